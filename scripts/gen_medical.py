#!/usr/bin/env python3
"""Generate data/medical/catalogue.json: the sample medical catalogue read by medical.lookup.

Deterministic: the output depends only on the seed tables below (no clock, no
randomness, no environment). Standard library only.

    python3 scripts/gen_medical.py                      # writes data/medical/catalogue.json
    python3 scripts/gen_medical.py --out /tmp/cat.json

The item names are real-world Chinese bill item names (lab tests, imaging,
drugs, treatments, operations, materials, beds, nursing) as they appear on
hospital bills and price lists; codes, classes and exclusion classes are this
project's own sample classification ("_sample": true), not an official
catalogue (the codes are not 医疗服务价格项目规范 codes).

Each seed table is one class: (class id, zh, en, bill category, exclusion
classes) and lines "name|name_en|alias,alias". Exclusion classes are ids of
the exclusions of data/products/*.json (med-million-2024: trace_element_test,
cosmetic, dental, health_checkup, nutrition_drugs). A lab test "...测定" also
gets the alias "...检测" unless that would clash with another entry.

The generator refuses (exit 1) duplicate names/aliases, also after the same
normalisation the tools worker applies (full-width -> ASCII, spaces and
brackets removed, trailing "(...)" and leading "[...]" groups dropped, ASCII
lower-cased).
"""

import argparse
import json
import os
import sys

CATEGORIES = ["检查费", "化验费", "药品费", "治疗费", "手术费", "麻醉费", "床位费", "材料费",
              "护理费", "诊查费"]

CODE_PREFIX = {"化验费": "LAB", "检查费": "EXM", "药品费": "DRG", "治疗费": "TRT",
               "手术费": "SUR", "麻醉费": "ANE", "床位费": "BED", "材料费": "MAT",
               "护理费": "NUR", "诊查费": "CON"}

# (class id, zh, en, category, exclusion classes, items text)
TABLES = [
    ("biochemical_enzyme", "生化酶学检查", "biochemical enzyme test", "化验费", [], """
唾液酸酶测定|Sialidase assay|
丙氨酸氨基转移酶测定|Alanine aminotransferase (ALT)|谷丙转氨酶测定,ALT,谷丙转氨酶
天门冬氨酸氨基转移酶测定|Aspartate aminotransferase (AST)|谷草转氨酶测定,AST,谷草转氨酶
碱性磷酸酶测定|Alkaline phosphatase (ALP)|ALP
γ-谷氨酰基转移酶测定|Gamma-glutamyl transferase (GGT)|谷氨酰转肽酶测定,GGT
乳酸脱氢酶测定|Lactate dehydrogenase (LDH)|LDH
肌酸激酶测定|Creatine kinase (CK)|CK
肌酸激酶同工酶测定|Creatine kinase MB isoenzyme (CK-MB)|CK-MB
血清淀粉酶测定|Serum amylase|血淀粉酶,AMY
尿淀粉酶测定|Urine amylase|
脂肪酶测定|Lipase|LIP
胆碱酯酶测定|Cholinesterase (CHE)|CHE
腺苷脱氨酶测定|Adenosine deaminase (ADA)|ADA
α-羟丁酸脱氢酶测定|Alpha-hydroxybutyrate dehydrogenase (HBDH)|HBDH
5'-核苷酸酶测定|5'-nucleotidase (5'-NT)|5'-NT
亮氨酸氨基肽酶测定|Leucine aminopeptidase (LAP)|LAP
单胺氧化酶测定|Monoamine oxidase (MAO)|MAO
醛缩酶测定|Aldolase|
超氧化物歧化酶测定|Superoxide dismutase (SOD)|SOD
血管紧张素转化酶测定|Angiotensin-converting enzyme (ACE)|
酸性磷酸酶测定|Acid phosphatase (ACP)|ACP
尿N-乙酰-β-D-氨基葡萄糖苷酶测定|Urine N-acetyl-beta-D-glucosaminidase (NAG)|尿NAG酶
髓过氧化物酶测定|Myeloperoxidase (MPO)|MPO
脂蛋白相关磷脂酶A2测定|Lipoprotein-associated phospholipase A2 (Lp-PLA2)|Lp-PLA2
心肌酶谱|Cardiac enzyme panel|心肌酶谱测定,心肌酶
"""),
    ("biochemical", "生化检查", "clinical chemistry test", "化验费", [], """
总蛋白测定|Total protein|TP
白蛋白测定|Albumin|ALB
前白蛋白测定|Prealbumin|PA
总胆红素测定|Total bilirubin|TBIL
直接胆红素测定|Direct bilirubin|DBIL
总胆汁酸测定|Total bile acids|TBA
尿素测定|Urea|尿素氮测定,BUN
肌酐测定|Creatinine|血肌酐,CREA
尿酸测定|Uric acid|UA,血尿酸
葡萄糖测定|Glucose|血糖测定,空腹血糖,GLU
糖化血红蛋白测定|Glycated haemoglobin (HbA1c)|HbA1c,糖化血红蛋白
糖化白蛋白测定|Glycated albumin|
口服葡萄糖耐量试验|Oral glucose tolerance test|OGTT,糖耐量试验
总胆固醇测定|Total cholesterol|TC
甘油三酯测定|Triglycerides|TG
高密度脂蛋白胆固醇测定|HDL cholesterol|HDL-C
低密度脂蛋白胆固醇测定|LDL cholesterol|LDL-C
载脂蛋白A1测定|Apolipoprotein A1|ApoA1
载脂蛋白B测定|Apolipoprotein B|ApoB
脂蛋白(a)测定|Lipoprotein(a)|
钾测定|Potassium|血清钾测定,血钾
钠测定|Sodium|血清钠测定,血钠
氯测定|Chloride|血清氯测定
钙测定|Calcium|血清钙测定,血钙
无机磷测定|Inorganic phosphate|血磷
镁测定|Magnesium|血清镁测定,血镁
血清铁测定|Serum iron|血清铁
总铁结合力测定|Total iron-binding capacity|TIBC
铁蛋白测定|Ferritin|血清铁蛋白,SF
二氧化碳结合力测定|Carbon dioxide combining power|CO2CP
血气分析|Blood gas analysis|动脉血气分析
乳酸测定|Lactate|血乳酸
血氨测定|Blood ammonia|
同型半胱氨酸测定|Homocysteine|HCY
β2-微球蛋白测定|Beta-2 microglobulin|β2-MG
胱抑素C测定|Cystatin C|CysC
视黄醇结合蛋白测定|Retinol-binding protein|RBP
尿微量白蛋白测定|Urine microalbumin|尿微量白蛋白,尿mALB
血清渗透压测定|Serum osmolality|
β-羟丁酸测定|Beta-hydroxybutyrate (ketones)|血酮体
肝功能检查|Liver function panel|肝功能,肝功能全套
肾功能检查|Renal function panel|肾功能,肾功三项
血脂四项|Lipid panel (four items)|血脂检查
电解质测定|Electrolyte panel|电解质四项
"""),
    ("trace_element", "微量元素检查", "trace-element test", "化验费", ["trace_element_test"], """
微量元素测定|Trace-element measurement|微量元素五项,全血微量元素测定,儿童微量元素检测
血清锌测定|Serum zinc|锌测定,血锌测定,血锌
血清铜测定|Serum copper|铜测定,血铜测定,血铜
血铅测定|Blood lead|铅测定,全血铅测定,血铅
血清硒测定|Serum selenium|硒测定,血硒测定
血清锰测定|Serum manganese|锰测定
尿碘测定|Urine iodine|
发微量元素测定|Hair trace-element analysis|头发微量元素检测
血镉测定|Blood cadmium|
"""),
    ("hematology", "血液学检查", "haematology test", "化验费", [], """
血细胞分析|Complete blood count|血常规,全血细胞计数,血常规检查,CBC
网织红细胞计数|Reticulocyte count|网织红
红细胞沉降率测定|Erythrocyte sedimentation rate|血沉,ESR
外周血细胞形态学检查|Peripheral blood smear|血涂片检查
ABO血型鉴定|ABO blood grouping|血型鉴定
Rh血型鉴定|Rh blood grouping|
交叉配血|Cross-matching|
骨髓细胞形态学检查|Bone marrow cytology|骨髓涂片
嗜酸性粒细胞计数|Eosinophil count|
红细胞渗透脆性试验|Erythrocyte osmotic fragility test|
血红蛋白电泳|Haemoglobin electrophoresis|
"""),
    ("coagulation", "凝血功能检查", "coagulation test", "化验费", [], """
凝血酶原时间测定|Prothrombin time (PT)|PT
活化部分凝血活酶时间测定|Activated partial thromboplastin time (APTT)|APTT
凝血酶时间测定|Thrombin time (TT)|
纤维蛋白原测定|Fibrinogen|FIB
D-二聚体测定|D-dimer|D-二聚体
纤维蛋白(原)降解产物测定|Fibrin(ogen) degradation products (FDP)|FDP
抗凝血酶III活性测定|Antithrombin III activity|AT-III
凝血功能检查|Coagulation panel|凝血四项,凝血常规
"""),
    ("immunology", "免疫学检查", "immunology test", "化验费", [], """
C反应蛋白测定|C-reactive protein (CRP)|CRP
超敏C反应蛋白测定|High-sensitivity CRP|hs-CRP
降钙素原测定|Procalcitonin (PCT)|PCT
类风湿因子测定|Rheumatoid factor|RF
抗链球菌溶血素O测定|Anti-streptolysin O|ASO
抗核抗体测定|Antinuclear antibodies|ANA
抗双链DNA抗体测定|Anti-dsDNA antibodies|
抗环瓜氨酸肽抗体测定|Anti-CCP antibodies|抗CCP抗体
抗中性粒细胞胞浆抗体测定|ANCA|ANCA
免疫球蛋白G测定|Immunoglobulin G|IgG
免疫球蛋白A测定|Immunoglobulin A|IgA
免疫球蛋白M测定|Immunoglobulin M|IgM
总免疫球蛋白E测定|Total immunoglobulin E|IgE
补体C3测定|Complement C3|
补体C4测定|Complement C4|
白细胞介素6测定|Interleukin-6|IL-6
T淋巴细胞亚群测定|T-lymphocyte subsets|
过敏原检测|Allergen test|变应原检测,过敏原筛查
肌钙蛋白I测定|Troponin I|cTnI,肌钙蛋白
肌红蛋白测定|Myoglobin|MYO
B型钠尿肽测定|B-type natriuretic peptide|BNP
N末端B型钠尿肽前体测定|NT-proBNP|NT-proBNP
血清淀粉样蛋白A测定|Serum amyloid A|SAA
"""),
    ("infection_marker", "感染性疾病检查", "infectious-disease test", "化验费", [], """
乙型肝炎表面抗原测定|Hepatitis B surface antigen|HBsAg
乙型肝炎表面抗体测定|Hepatitis B surface antibody|抗-HBs
乙型肝炎e抗原测定|Hepatitis B e antigen|HBeAg
乙型肝炎e抗体测定|Hepatitis B e antibody|抗-HBe
乙型肝炎核心抗体测定|Hepatitis B core antibody|抗-HBc
乙型肝炎五项|Hepatitis B serology panel|乙肝五项,乙肝两对半
乙型肝炎病毒DNA定量|HBV DNA quantification|HBV-DNA
丙型肝炎抗体测定|Hepatitis C antibody|抗-HCV
人免疫缺陷病毒抗体测定|HIV antibody|HIV抗体,艾滋病抗体检测
梅毒螺旋体特异抗体测定|Treponema pallidum antibody|梅毒抗体检测,TPPA
快速血浆反应素试验|Rapid plasma reagin test|RPR
甲型肝炎抗体IgM测定|Hepatitis A IgM antibody|
戊型肝炎抗体IgM测定|Hepatitis E IgM antibody|
EB病毒抗体测定|Epstein-Barr virus antibody|
巨细胞病毒抗体测定|Cytomegalovirus antibody|
肺炎支原体抗体测定|Mycoplasma pneumoniae antibody|支原体抗体
新型冠状病毒核酸检测|SARS-CoV-2 nucleic acid test|新冠核酸检测
甲型流感病毒抗原检测|Influenza A antigen test|甲流抗原检测
结核感染T细胞检测|Interferon-gamma release assay for TB|T-SPOT
幽门螺杆菌抗体测定|Helicobacter pylori antibody|
13C尿素呼气试验|13C urea breath test|碳13呼气试验
人乳头瘤病毒核酸检测|HPV DNA test|HPV检测
"""),
    ("tumor_marker", "肿瘤标志物检查", "tumour marker test", "化验费", [], """
甲胎蛋白测定|Alpha-fetoprotein (AFP)|AFP
癌胚抗原测定|Carcinoembryonic antigen (CEA)|CEA
糖类抗原19-9测定|CA 19-9|CA19-9
糖类抗原125测定|CA 125|CA125
糖类抗原15-3测定|CA 15-3|CA15-3
糖类抗原72-4测定|CA 72-4|CA72-4
总前列腺特异性抗原测定|Total PSA|tPSA
游离前列腺特异性抗原测定|Free PSA|fPSA
神经元特异性烯醇化酶测定|Neuron-specific enolase (NSE)|NSE
细胞角蛋白19片段测定|Cytokeratin 19 fragment (CYFRA 21-1)|CYFRA21-1
鳞状上皮细胞癌抗原测定|Squamous cell carcinoma antigen|SCC
胃泌素释放肽前体测定|Pro-gastrin-releasing peptide|ProGRP
人附睾蛋白4测定|Human epididymis protein 4|HE4
异常凝血酶原测定|PIVKA-II|PIVKA-II
"""),
    ("hormone", "内分泌激素检查", "hormone test", "化验费", [], """
促甲状腺激素测定|Thyroid-stimulating hormone|TSH
游离三碘甲状腺原氨酸测定|Free triiodothyronine|FT3
游离甲状腺素测定|Free thyroxine|FT4
三碘甲状腺原氨酸测定|Triiodothyronine|T3
甲状腺素测定|Thyroxine|T4
甲状腺功能检查|Thyroid function panel|甲功五项,甲功三项
甲状腺球蛋白抗体测定|Thyroglobulin antibody|TGAb
甲状腺过氧化物酶抗体测定|Thyroid peroxidase antibody|TPOAb
胰岛素测定|Insulin|
C肽测定|C-peptide|
皮质醇测定|Cortisol|
促肾上腺皮质激素测定|Adrenocorticotropic hormone|ACTH
人绒毛膜促性腺激素测定|Human chorionic gonadotropin|β-HCG,血HCG
孕酮测定|Progesterone|
雌二醇测定|Oestradiol|E2
睾酮测定|Testosterone|
催乳素测定|Prolactin|PRL
促卵泡生成素测定|Follicle-stimulating hormone|FSH
促黄体生成素测定|Luteinising hormone|LH
甲状旁腺激素测定|Parathyroid hormone|PTH
25-羟基维生素D测定|25-hydroxyvitamin D|维生素D测定
生长激素测定|Growth hormone|GH
"""),
    ("urine_stool", "尿便及体液常规检查", "urine, stool and body-fluid test", "化验费", [], """
尿液分析|Urinalysis|尿常规,尿常规检查
尿沉渣定量|Urine sediment count|
24小时尿蛋白定量|24-hour urine protein|
尿妊娠试验|Urine pregnancy test|尿HCG
粪便常规|Stool routine|大便常规
粪便隐血试验|Faecal occult blood test|大便潜血,OB试验
尿本周蛋白测定|Urine Bence Jones protein|
尿肌酐测定|Urine creatinine|
胸腹水常规检查|Pleural/ascitic fluid routine|
脑脊液常规检查|Cerebrospinal fluid routine|
阴道分泌物检查|Vaginal discharge test|白带常规
精液常规检查|Semen analysis|
"""),
    ("microbiology", "病原微生物检查", "microbiology test", "化验费", [], """
血培养及鉴定|Blood culture and identification|血培养
尿培养及鉴定|Urine culture and identification|尿培养
痰培养及鉴定|Sputum culture and identification|痰培养
粪便培养及鉴定|Stool culture and identification|大便培养
细菌药物敏感试验|Antibiotic susceptibility test|药敏试验
真菌培养及鉴定|Fungal culture and identification|真菌培养
涂片革兰染色镜检|Gram stain smear|
抗酸杆菌涂片检查|Acid-fast bacilli smear|抗酸染色
结核分枝杆菌核酸检测|Mycobacterium tuberculosis DNA test|TB-DNA
真菌(1-3)-β-D葡聚糖检测|Fungal (1-3)-beta-D-glucan|G试验
曲霉菌半乳甘露聚糖检测|Aspergillus galactomannan|GM试验
"""),
    ("pathology", "病理检查", "pathology", "检查费", [], """
局部切除组织活检检查与诊断|Biopsy examination and diagnosis|活检病理,组织病理检查
手术标本检查与诊断|Surgical specimen examination and diagnosis|术后病理
免疫组织化学染色诊断|Immunohistochemistry|免疫组化
细胞学检查与诊断|Cytology examination|
宫颈液基细胞学检查|Liquid-based cervical cytology|TCT
术中冰冻切片检查与诊断|Intraoperative frozen section|冰冻病理
骨髓活检|Bone marrow biopsy|
"""),
    ("imaging", "影像检查", "imaging", "检查费", [], """
胸部正位片|Chest X-ray (PA)|胸片,胸部X线摄影
胸部正侧位片|Chest X-ray (PA and lateral)|
腰椎正侧位片|Lumbar spine X-ray|
颈椎正侧位片|Cervical spine X-ray|
膝关节正侧位片|Knee X-ray|
腹部立位平片|Erect abdominal X-ray|立位腹平片
骨盆正位片|Pelvis X-ray|
踝关节正侧位片|Ankle X-ray|
头颅CT平扫|Head CT (non-contrast)|头颅CT,头部CT
胸部CT平扫|Chest CT (non-contrast)|胸部CT,肺部CT
胸部CT增强扫描|Chest CT with contrast|
上腹部CT平扫|Upper abdomen CT|
上腹部CT增强扫描|Upper abdomen CT with contrast|
盆腔CT平扫|Pelvis CT|
腰椎CT平扫|Lumbar spine CT|
鼻窦CT平扫|Sinus CT|
冠状动脉CT血管成像|Coronary CT angiography|冠脉CTA
头颅CT血管成像|Head CT angiography|头颅CTA
肺动脉CT血管成像|CT pulmonary angiography|CTPA
头颅磁共振平扫|Head MRI|头颅MRI,头颅核磁
头颅磁共振增强扫描|Head MRI with contrast|
颈椎磁共振平扫|Cervical spine MRI|颈椎MRI
腰椎磁共振平扫|Lumbar spine MRI|腰椎MRI
膝关节磁共振平扫|Knee MRI|膝关节MRI
上腹部磁共振平扫|Upper abdomen MRI|
磁共振胰胆管成像|MR cholangiopancreatography|MRCP
乳腺磁共振平扫|Breast MRI|
前列腺磁共振平扫|Prostate MRI|
心脏磁共振检查|Cardiac MRI|
数字减影血管造影|Digital subtraction angiography|DSA
乳腺钼靶X线摄影|Mammography|乳腺钼靶
上消化道造影|Upper GI contrast study|钡餐
静脉肾盂造影|Intravenous pyelography|IVP
双能X线骨密度测定|DXA bone density|骨密度测定,骨密度
PET-CT全身显像|Whole-body PET-CT|PET-CT
全身骨显像|Whole-body bone scan|骨扫描
甲状腺静态显像|Thyroid scintigraphy|
"""),
    ("ultrasound", "超声检查", "ultrasound", "检查费", [], """
腹部彩超|Abdominal ultrasound|肝胆胰脾彩超
泌尿系彩超|Urinary tract ultrasound|
甲状腺彩超|Thyroid ultrasound|
乳腺彩超|Breast ultrasound|
超声心动图|Echocardiography|心脏彩超
颈动脉彩超|Carotid ultrasound|颈部血管彩超
下肢静脉彩超|Lower-limb venous ultrasound|下肢深静脉彩超
妇科彩超|Gynaecological ultrasound|子宫附件彩超
经阴道彩超|Transvaginal ultrasound|
产科彩超|Obstetric ultrasound|孕期B超
胎儿系统彩超|Fetal anomaly scan|四维彩超
前列腺彩超|Prostate ultrasound|
浅表淋巴结彩超|Superficial lymph node ultrasound|
胸腔积液超声定位|Ultrasound localisation of pleural effusion|
经食管超声心动图|Transoesophageal echocardiography|
肝脏瞬时弹性成像|Liver transient elastography|FibroScan
"""),
    ("function_test", "功能检查", "function test", "检查费", [], """
常规心电图检查|Electrocardiogram|心电图,ECG
动态心电图|24-hour Holter ECG|Holter,24小时动态心电图
动态血压监测|Ambulatory blood pressure monitoring|
运动平板试验|Treadmill exercise test|平板运动试验
脑电图|Electroencephalogram|EEG
视频脑电图|Video EEG|
肌电图|Electromyography|EMG
肺功能检查|Pulmonary function test|肺通气功能检查
纯音测听|Pure-tone audiometry|电测听
眼压测量|Intraocular pressure measurement|
视野检查|Visual field test|
眼底照相|Fundus photography|
多导睡眠监测|Polysomnography|睡眠监测
"""),
    ("endoscopy", "内镜检查", "endoscopy", "检查费", [], """
电子胃镜检查|Gastroscopy|胃镜
无痛胃镜检查|Gastroscopy under sedation|
电子结肠镜检查|Colonoscopy|肠镜
无痛结肠镜检查|Colonoscopy under sedation|无痛肠镜
电子支气管镜检查|Bronchoscopy|支气管镜,纤支镜
膀胱镜检查|Cystoscopy|
宫腔镜检查|Hysteroscopy|
鼻内镜检查|Nasal endoscopy|鼻窦镜
电子喉镜检查|Laryngoscopy|喉镜
胶囊内镜检查|Capsule endoscopy|胶囊胃镜
超声内镜检查|Endoscopic ultrasound|EUS
"""),
    ("health_checkup", "健康体检", "health check-up", "检查费", ["health_checkup"], """
健康体检|Health check-up|一般健康检查,常规体检
入职体检|Pre-employment check-up|
年度体检套餐|Annual check-up package|体检套餐
婚前医学检查|Premarital medical examination|婚检
孕前优生健康检查|Pre-pregnancy check-up|孕前检查
防癌筛查套餐|Cancer screening package|
低剂量螺旋CT肺癌筛查|Low-dose CT lung cancer screening|
老年人健康体检|Elderly health check-up|
学生体检|Student health check-up|
驾驶员体检|Driver's medical examination|驾照体检
"""),
    ("western_drug", "西药", "western medicine", "药品费", [], """
0.9%氯化钠注射液|0.9% sodium chloride injection|生理盐水
5%葡萄糖注射液|5% glucose injection|
葡萄糖氯化钠注射液|Glucose and sodium chloride injection|
复方氯化钠注射液|Compound sodium chloride injection|林格液
乳酸钠林格注射液|Lactated Ringer's injection|
氯化钾注射液|Potassium chloride injection|
奥美拉唑肠溶胶囊|Omeprazole enteric capsules|
注射用奥美拉唑钠|Omeprazole sodium for injection|
注射用泮托拉唑钠|Pantoprazole sodium for injection|泮托拉唑
雷贝拉唑钠肠溶片|Rabeprazole sodium enteric tablets|
阿司匹林肠溶片|Aspirin enteric tablets|阿司匹林
硫酸氢氯吡格雷片|Clopidogrel bisulfate tablets|氯吡格雷
阿托伐他汀钙片|Atorvastatin calcium tablets|阿托伐他汀
瑞舒伐他汀钙片|Rosuvastatin calcium tablets|瑞舒伐他汀
硝苯地平控释片|Nifedipine controlled-release tablets|
苯磺酸氨氯地平片|Amlodipine besylate tablets|氨氯地平
缬沙坦胶囊|Valsartan capsules|
琥珀酸美托洛尔缓释片|Metoprolol succinate sustained-release tablets|美托洛尔缓释片
盐酸二甲双胍片|Metformin hydrochloride tablets|二甲双胍
阿卡波糖片|Acarbose tablets|
门冬胰岛素注射液|Insulin aspart injection|
甘精胰岛素注射液|Insulin glargine injection|
布洛芬缓释胶囊|Ibuprofen sustained-release capsules|布洛芬
对乙酰氨基酚片|Paracetamol tablets|扑热息痛
盐酸氨溴索注射液|Ambroxol hydrochloride injection|氨溴索
低分子肝素钙注射液|Low-molecular-weight heparin calcium injection|低分子肝素
肝素钠注射液|Heparin sodium injection|
呋塞米注射液|Furosemide injection|速尿
地塞米松磷酸钠注射液|Dexamethasone sodium phosphate injection|地塞米松
注射用甲泼尼龙琥珀酸钠|Methylprednisolone sodium succinate for injection|甲泼尼龙
盐酸利多卡因注射液|Lidocaine hydrochloride injection|利多卡因
硝酸甘油注射液|Nitroglycerin injection|
磷酸奥司他韦胶囊|Oseltamivir phosphate capsules|奥司他韦
蒙脱石散|Montmorillonite powder|
多潘立酮片|Domperidone tablets|
盐酸昂丹司琼注射液|Ondansetron hydrochloride injection|昂丹司琼
甘露醇注射液|Mannitol injection|20%甘露醇
人血白蛋白|Human albumin|白蛋白注射液
静注人免疫球蛋白|Human immunoglobulin for intravenous injection|丙种球蛋白,丙球
左甲状腺素钠片|Levothyroxine sodium tablets|
"""),
    ("antibiotic", "抗菌药物", "antimicrobial drug", "药品费", [], """
注射用头孢曲松钠|Ceftriaxone sodium for injection|头孢曲松
注射用头孢呋辛钠|Cefuroxime sodium for injection|头孢呋辛
注射用头孢哌酮钠舒巴坦钠|Cefoperazone-sulbactam for injection|头孢哌酮舒巴坦
注射用哌拉西林钠他唑巴坦钠|Piperacillin-tazobactam for injection|哌拉西林他唑巴坦
阿莫西林胶囊|Amoxicillin capsules|阿莫西林
阿莫西林克拉维酸钾片|Amoxicillin-clavulanate tablets|
左氧氟沙星注射液|Levofloxacin injection|左氧氟沙星
盐酸莫西沙星片|Moxifloxacin hydrochloride tablets|莫西沙星
阿奇霉素片|Azithromycin tablets|
注射用阿奇霉素|Azithromycin for injection|
注射用美罗培南|Meropenem for injection|美罗培南
注射用亚胺培南西司他丁钠|Imipenem-cilastatin for injection|亚胺培南
注射用盐酸万古霉素|Vancomycin hydrochloride for injection|万古霉素
甲硝唑氯化钠注射液|Metronidazole and sodium chloride injection|甲硝唑
克林霉素磷酸酯注射液|Clindamycin phosphate injection|克林霉素
注射用青霉素钠|Benzylpenicillin sodium for injection|青霉素
头孢克肟分散片|Cefixime dispersible tablets|头孢克肟
利奈唑胺片|Linezolid tablets|
氟康唑胶囊|Fluconazole capsules|氟康唑
"""),
    ("chinese_patent_drug", "中成药", "Chinese patent medicine", "药品费", [], """
连花清瘟胶囊|Lianhua Qingwen capsules|
注射用血塞通|Xuesaitong for injection|血塞通
注射用血栓通|Xueshuantong for injection|血栓通
复方丹参滴丸|Compound Danshen dripping pills|
银杏叶片|Ginkgo leaf tablets|
蒲地蓝消炎口服液|Pudilan Xiaoyan oral liquid|
双黄连口服液|Shuanghuanglian oral liquid|
藿香正气水|Huoxiang Zhengqi liquid|
六味地黄丸|Liuwei Dihuang pills|
安宫牛黄丸|Angong Niuhuang pills|
云南白药胶囊|Yunnan Baiyao capsules|
苏黄止咳胶囊|Suhuang Zhike capsules|
通心络胶囊|Tongxinluo capsules|
丹红注射液|Danhong injection|
疏血通注射液|Shuxuetong injection|
醒脑静注射液|Xingnaojing injection|
"""),
    ("herbal_drug", "中药饮片", "herbal decoction pieces", "药品费", [], """
中药饮片|Chinese herbal decoction pieces|中草药,草药
中药配方颗粒|Chinese herbal formula granules|配方颗粒
黄芪|Astragalus root|
当归|Angelica sinensis root|
党参|Codonopsis root|
茯苓|Poria|
甘草|Liquorice root|
白术|Atractylodes rhizome|
川芎|Ligusticum rhizome|
金银花|Honeysuckle flower|
板蓝根|Isatis root|
"""),
    ("health_product", "滋补品及保健食品", "tonic or health food", "药品费", ["nutrition_drugs"], """
冬虫夏草|Cordyceps|虫草
西洋参|American ginseng|花旗参
灵芝孢子粉|Ganoderma spore powder|
鹿茸|Deer antler velvet|
阿胶|Donkey-hide gelatin|
燕窝|Edible bird's nest|
蛋白粉|Protein powder|蛋白质粉
鱼油软胶囊|Fish oil soft capsules|深海鱼油
褪黑素片|Melatonin tablets|褪黑素
"""),
    ("nutrition_drug", "营养补充类药品", "nutritional supplement drug", "药品费", ["nutrition_drugs"], """
多维元素片|Multivitamin and mineral tablets|复合维生素片,善存片
维生素C片|Vitamin C tablets|
复合维生素B片|Vitamin B complex tablets|
维生素E软胶囊|Vitamin E soft capsules|
碳酸钙D3片|Calcium carbonate and vitamin D3 tablets|钙片
葡萄糖酸锌口服溶液|Zinc gluconate oral solution|补锌口服液
维生素AD滴剂|Vitamin A and D drops|鱼肝油
赖氨肌醇维B12口服溶液|Lysine, inositol and vitamin B12 oral solution|
"""),
    ("immune_regulating_drug", "免疫功能调节类药品", "immune-regulating drug", "药品费", ["nutrition_drugs"], """
注射用胸腺肽|Thymopeptide for injection|胸腺肽
胸腺五肽注射液|Thymopentin injection|胸腺五肽
注射用胸腺法新|Thymalfasin for injection|胸腺法新
匹多莫德口服溶液|Pidotimod oral solution|匹多莫德
脾氨肽口服冻干粉|Spleen aminopeptide oral lyophilised powder|
香菇多糖注射液|Lentinan injection|
转移因子胶囊|Transfer factor capsules|
细菌溶解产物胶囊|Bacterial lysate capsules|
"""),
    ("cosmetic_drug", "美容及减肥类药品", "cosmetic or weight-loss drug", "药品费", ["nutrition_drugs"], """
奥利司他胶囊|Orlistat capsules|奥利司他
氢醌乳膏|Hydroquinone cream|
米诺地尔酊|Minoxidil tincture|
"""),
    ("general_treatment", "一般治疗", "general treatment", "治疗费", [], """
静脉输液|Intravenous infusion|静脉滴注,输液
静脉注射|Intravenous injection|
肌肉注射|Intramuscular injection|肌注
皮下注射|Subcutaneous injection|
雾化吸入|Nebulised inhalation|雾化
氧气吸入|Oxygen therapy|吸氧
留置导尿|Indwelling urinary catheterisation|导尿
灌肠|Enema|
胃肠减压|Gastrointestinal decompression|
清创缝合|Debridement and suturing|清创缝合术
换药|Wound dressing change|
血液透析|Haemodialysis|透析
腹膜透析|Peritoneal dialysis|
连续性血液净化|Continuous renal replacement therapy|CRRT
呼吸机辅助呼吸|Mechanical ventilation|机械通气
心电监护|ECG monitoring|心电监测
血氧饱和度监测|Pulse oximetry monitoring|
输血|Blood transfusion|
高压氧治疗|Hyperbaric oxygen therapy|高压氧
放射治疗|Radiotherapy|放疗
调强放射治疗|Intensity-modulated radiotherapy|IMRT
体外冲击波碎石|Extracorporeal shock-wave lithotripsy|碎石
心肺复苏术|Cardiopulmonary resuscitation|心肺复苏
电除颤|Defibrillation|
胸腔穿刺术|Thoracentesis|胸穿
腹腔穿刺术|Paracentesis|腹穿
腰椎穿刺术|Lumbar puncture|腰穿
骨髓穿刺术|Bone marrow aspiration|骨穿
关节腔穿刺术|Joint aspiration|
鼻饲管置管|Nasogastric tube insertion|鼻饲
中心静脉穿刺置管术|Central venous catheterisation|深静脉置管
经外周静脉置入中心静脉导管术|PICC insertion|PICC置管
"""),
    ("rehabilitation", "康复治疗", "rehabilitation", "治疗费", ["health_checkup"], """
运动疗法|Exercise therapy|
偏瘫肢体综合训练|Hemiplegia limb training|
作业疗法|Occupational therapy|
言语训练|Speech therapy|
吞咽功能障碍训练|Dysphagia training|
平衡功能训练|Balance training|
认知知觉功能障碍训练|Cognitive and perceptual training|
康复评定|Rehabilitation assessment|康复功能评定
"""),
    ("physiotherapy", "物理治疗", "physiotherapy", "治疗费", [], """
中频脉冲电治疗|Medium-frequency electrotherapy|中频电疗
超短波治疗|Ultrashort-wave therapy|
红外线治疗|Infrared therapy|
微波治疗|Microwave therapy|
磁疗|Magnetic therapy|
颈椎牵引|Cervical traction|
腰椎牵引|Lumbar traction|
蜡疗|Paraffin therapy|
"""),
    ("tcm_treatment", "中医治疗", "traditional Chinese medicine treatment", "治疗费", [], """
普通针刺|Acupuncture|针灸,针刺
电针|Electroacupuncture|
艾灸|Moxibustion|灸法
拔罐|Cupping|拔火罐
推拿治疗|Tuina massage therapy|推拿
刮痧|Gua sha|
穴位贴敷|Acupoint application|
中药熏洗|Herbal fumigation and washing|
中药封包治疗|Herbal compress therapy|
"""),
    ("preventive", "预防接种及预防性治疗", "vaccination or preventive treatment", "治疗费", ["health_checkup"], """
流感疫苗接种|Influenza vaccination|流感疫苗
乙肝疫苗接种|Hepatitis B vaccination|乙肝疫苗
人乳头瘤病毒疫苗接种|HPV vaccination|HPV疫苗
带状疱疹疫苗接种|Shingles vaccination|带状疱疹疫苗
肺炎球菌疫苗接种|Pneumococcal vaccination|肺炎疫苗
三伏贴|Summer acupoint plaster (preventive)|冬病夏治穴位贴敷
"""),
    ("cosmetic", "美容整形", "cosmetic procedure", "手术费", ["cosmetic"], """
重睑成形术|Double-eyelid surgery|双眼皮手术,割双眼皮
隆鼻术|Rhinoplasty (augmentation)|
隆胸术|Breast augmentation|假体隆胸
吸脂术|Liposuction|抽脂
面部除皱术|Facelift|拉皮
肉毒素除皱注射|Botulinum toxin wrinkle injection|打肉毒素
玻尿酸填充注射|Hyaluronic acid filler injection|透明质酸填充
激光祛斑|Laser pigment removal|祛斑
光子嫩肤|Intense pulsed light rejuvenation|
激光脱毛|Laser hair removal|
美容祛痣|Cosmetic mole removal|
疤痕美容修复|Cosmetic scar revision|
变性手术|Gender reassignment surgery|性别重置手术
正颌外科手术|Orthognathic surgery|
"""),
    ("vision_correction", "视力矫正手术", "vision-correction surgery", "手术费", ["cosmetic"], """
准分子激光角膜原位磨镶术|LASIK|LASIK,近视激光手术
全飞秒激光小切口角膜基质透镜取出术|SMILE femtosecond laser surgery|全飞秒,SMILE
有晶体眼人工晶体植入术|Phakic intraocular lens implantation|ICL植入术
"""),
    ("dental", "牙科治疗及保健", "dental treatment or care", "治疗费", ["dental"], """
龈上洁治术|Supragingival scaling|洗牙,洁牙
牙体缺损充填术|Dental filling|补牙
根管治疗术|Root canal treatment|根管治疗
牙拔除术|Tooth extraction|拔牙
阻生齿拔除术|Impacted tooth extraction|拔智齿
烤瓷冠修复|Porcelain crown|烤瓷牙
牙种植体植入术|Dental implant|种植牙
活动义齿|Removable denture|假牙
口腔正畸治疗|Orthodontic treatment|牙齿矫正,正畸
窝沟封闭|Pit and fissure sealing|
牙齿美白|Tooth whitening|冷光美白
牙周刮治术|Periodontal scaling and root planing|牙周刮治
口腔全景片|Dental panoramic X-ray|全景片,牙片
"""),
    ("optometry", "验光配镜", "optometry and glasses", "检查费", ["dental"], """
医学验光|Refraction test|验光
配镜|Glasses fitting|配眼镜
角膜接触镜验配|Contact lens fitting|隐形眼镜验配
角膜塑形镜验配|Orthokeratology lens fitting|OK镜
"""),
    ("surgery", "手术", "surgery", "手术费", [], """
阑尾切除术|Appendectomy|
腹腔镜下阑尾切除术|Laparoscopic appendectomy|
胆囊切除术|Cholecystectomy|
腹腔镜下胆囊切除术|Laparoscopic cholecystectomy|腹腔镜胆囊切除术,LC
腹股沟疝修补术|Inguinal hernia repair|疝修补术
甲状腺部分切除术|Partial thyroidectomy|
乳腺肿物切除术|Breast lump excision|
经皮冠状动脉支架植入术|Percutaneous coronary stenting|PCI,心脏支架手术
冠状动脉造影术|Coronary angiography|冠脉造影
永久起搏器植入术|Permanent pacemaker implantation|
全髋关节置换术|Total hip replacement|
全膝关节置换术|Total knee replacement|
骨折切开复位内固定术|Open reduction and internal fixation|骨折内固定
经尿道前列腺电切术|Transurethral resection of the prostate|TURP
剖宫产术|Caesarean section|剖腹产
子宫肌瘤剔除术|Myomectomy|
白内障超声乳化摘除术|Phacoemulsification cataract surgery|白内障手术
人工晶体植入术|Intraocular lens implantation|
扁桃体切除术|Tonsillectomy|
鼻中隔矫正术|Septoplasty|
痔切除术|Haemorrhoidectomy|痔疮手术
胃大部切除术|Subtotal gastrectomy|
肺叶切除术|Lobectomy|
开颅血肿清除术|Craniotomy for haematoma evacuation|
腰椎间盘髓核摘除术|Lumbar discectomy|椎间盘摘除术
经皮肾镜取石术|Percutaneous nephrolithotomy|PCNL
内镜下结肠息肉切除术|Endoscopic colon polypectomy|肠息肉切除
体表肿物切除术|Excision of superficial mass|皮下肿物切除
"""),
    ("anaesthesia", "麻醉", "anaesthesia", "麻醉费", [], """
全身麻醉|General anaesthesia|全麻
椎管内麻醉|Neuraxial anaesthesia|腰麻,硬膜外麻醉
局部浸润麻醉|Local infiltration anaesthesia|局麻
神经阻滞麻醉|Nerve block anaesthesia|
基础麻醉|Basal anaesthesia|
麻醉中监测|Intra-anaesthesia monitoring|
"""),
    ("bed", "床位", "bed", "床位费", [], """
普通病房床位费|Standard ward bed|普通床位费
双人间床位费|Double-room bed|
单人间床位费|Single-room bed|
重症监护病房床位费|ICU bed|ICU床位费
急诊观察床位费|Emergency observation bed|留观床位费
层流洁净病房床位费|Laminar-flow clean ward bed|
特需病房床位费|Special-needs (VIP) ward bed|VIP病房床位费
"""),
    ("nursing", "护理", "nursing", "护理费", [], """
特级护理|Special-level nursing|
一级护理|Level-1 nursing|
二级护理|Level-2 nursing|
三级护理|Level-3 nursing|
重症监护|Intensive care nursing|
气管切开护理|Tracheostomy care|
吸痰护理|Suction care|
造口护理|Stoma care|
压疮护理|Pressure-ulcer care|
口腔护理|Oral care (nursing)|
会阴护理|Perineal care|
静脉置管护理|Venous catheter care|PICC维护
"""),
    ("consultation", "诊查", "consultation", "诊查费", [], """
普通门诊诊查费|Outpatient consultation|门诊诊查费
副主任医师门诊诊查费|Associate chief physician consultation|专家门诊诊查费
急诊诊查费|Emergency consultation|
住院诊查费|Inpatient consultation|
挂号费|Registration fee|
院内会诊|In-hospital consultation|会诊
远程会诊|Remote consultation|
多学科会诊|Multidisciplinary consultation|MDT
"""),
    ("material", "医用材料", "medical material", "材料费", [], """
一次性使用输液器|Disposable infusion set|输液器
一次性使用无菌注射器|Disposable sterile syringe|注射器
静脉留置针|Intravenous indwelling needle|留置针
医用纱布块|Medical gauze|纱布
一次性使用导尿包|Disposable catheterisation kit|导尿包
冠状动脉药物洗脱支架|Drug-eluting coronary stent|冠脉支架,心脏支架
人工髋关节假体|Hip joint prosthesis|
人工膝关节假体|Knee joint prosthesis|
接骨板|Bone plate|骨科钢板
接骨螺钉|Bone screw|骨科螺钉
疝修补补片|Hernia mesh|疝补片
可吸收缝合线|Absorbable suture|可吸收线
一次性使用吻合器|Disposable stapler|吻合器
人工晶体|Intraocular lens|
弹力绷带|Elastic bandage|
石膏绷带|Plaster bandage|石膏
一次性使用吸痰管|Disposable suction catheter|吸痰管
心脏起搏器|Cardiac pacemaker|起搏器
中心静脉导管|Central venous catheter|CVC导管
胰岛素笔用针头|Insulin pen needle|
"""),
    ("assistive_device", "康复辅具", "assistive device", "材料费", [], """
轮椅|Wheelchair|
助听器|Hearing aid|
假肢|Prosthetic limb|
腋拐|Axillary crutch|拐杖
颈托|Cervical collar|
护腰|Lumbar support belt|腰围
"""),
]

SPACES = {" ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u3000"}
BRACKET_FORMS = {"\u3010": "[", "\u3014": "[", "\u3016": "[",
                 "\u3011": "]", "\u3015": "]", "\u3017": "]"}


def normalize(s):
    """The tools worker's normalisation (services/tools/tools_catalogue.c)."""
    out = []
    for ch in s:
        if ch in SPACES:
            continue
        cp = ord(ch)
        if 0xFF01 <= cp <= 0xFF5E:
            ch = chr(cp - 0xFEE0)
        ch = BRACKET_FORMS.get(ch, ch)
        if "A" <= ch <= "Z":
            ch = ch.lower()
        out.append(ch)
    t = "".join(out)
    while t and t[-1] in ")]":
        depth, p = 0, len(t)
        found = False
        while p > 0:
            p -= 1
            if t[p] in ")]":
                depth += 1
            elif t[p] in "([":
                depth -= 1
                if depth == 0:
                    found = True
                    break
        if not found or p == 0:
            break
        t = t[:p]
    start = 0
    while start < len(t) and t[start] in "([":
        depth, p = 0, start
        closed = False
        while p < len(t):
            if t[p] in "([":
                depth += 1
            elif t[p] in ")]":
                depth -= 1
                if depth == 0:
                    closed = True
                    break
            p += 1
        if not closed or p + 1 >= len(t):
            break
        start = p + 1
    return "".join(ch for ch in t[start:] if ch not in "()[]")


def build():
    classes = {}
    items = []
    taken = {}  # normalised key -> code
    counters = {}

    def claim(text, code, what):
        key = normalize(text)
        if not key:
            sys.exit("gen_medical: %s '%s' normalises to nothing" % (what, text))
        owner = taken.get(key)
        if owner is not None and owner != code:
            sys.exit("gen_medical: %s '%s' clashes with item %s (normalised '%s')"
                     % (what, text, owner, key))
        taken[key] = code

    for cid, zh, en, category, excl, text in TABLES:
        if cid in classes:
            sys.exit("gen_medical: duplicate class %s" % cid)
        classes[cid] = {"zh": zh, "en": en}
        for line in text.strip().splitlines():
            parts = line.split("|")
            if len(parts) != 3:
                sys.exit("gen_medical: bad seed line: %r" % line)
            name, name_en, aliases = parts[0].strip(), parts[1].strip(), parts[2].strip()
            prefix = CODE_PREFIX[category]
            counters[prefix] = counters.get(prefix, 0) + 1
            code = "%s-%04d" % (prefix, counters[prefix])
            alias_list = [a.strip() for a in aliases.split(",") if a.strip()]
            claim(name, code, "name")
            for a in alias_list:
                claim(a, code, "alias")
            items.append({
                "code": code,
                "name": name,
                "aliases": alias_list,
                "name_en": name_en,
                "category": category,
                "class": cid,
                "exclusion_classes": list(excl),
            })
    # Generated aliases: "...测定" is often billed as "...检测"; added only when unambiguous.
    for it in items:
        if it["name"].endswith("测定"):
            alt = it["name"][:-2] + "检测"
            key = normalize(alt)
            if key not in taken and len(it["aliases"]) < 16:
                taken[key] = it["code"]
                it["aliases"].append(alt)
    return classes, items


def render(classes, items):
    head = {
        "_sample": True,
        "_note": "Sample medical catalogue for demos and tests, generated by "
                 "scripts/gen_medical.py; do not edit by hand. Item names are real-world bill "
                 "item names; codes and classes are this project's own (not an official "
                 "catalogue).",
        "version": "2024-sample-1",
        "categories": CATEGORIES,
        "classes": classes,
    }
    out = ["{"]
    for k, v in head.items():
        out.append("  %s: %s," % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
    out.append('  "items": [')
    out.append(",\n".join("    " + json.dumps(it, ensure_ascii=False, separators=(", ", ": "))
                          for it in items))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "medical",
                                                  "catalogue.json"))
    args = ap.parse_args(argv)
    classes, items = build()
    text = render(classes, items)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("gen_medical: %d items, %d classes -> %s" % (len(items), len(classes), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

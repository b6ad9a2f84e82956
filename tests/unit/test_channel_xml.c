/*
 * test_channel_xml.c - the WeCom callback's minimal XML field reader
 * (channel_xml_field, services/gateway/channel_wecom.c): CDATA, plain text
 * with entities, absent fields, bounds, and what it refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "channel_int.h"

static int field(const char *xml, const char *tag, char *out, size_t size)
{
    return channel_xml_field(xml, strlen(xml), tag, out, size);
}

static void test_fields(void **state)
{
    (void)state;
    const char *xml = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
                      "<FromUserName><![CDATA[zhang san]]></FromUserName>"
                      "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                      "<Content><![CDATA[我的保单 <P10023> & more]]></Content>"
                      "<MsgId>1234567890123456</MsgId><Empty><![CDATA[]]></Empty>"
                      "<Plain>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</Plain></xml>";
    char out[256];
    assert_int_equal(field(xml, "ToUserName", out, sizeof out), 1);
    assert_string_equal(out, "wx5823bf96d3bd56c7");
    assert_int_equal(field(xml, "FromUserName", out, sizeof out), 1);
    assert_string_equal(out, "zhang san");
    assert_int_equal(field(xml, "Content", out, sizeof out), 1);
    assert_string_equal(out, "我的保单 <P10023> & more");
    assert_int_equal(field(xml, "MsgId", out, sizeof out), 1);
    assert_string_equal(out, "1234567890123456");
    assert_int_equal(field(xml, "Empty", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(field(xml, "Plain", out, sizeof out), 1);
    assert_string_equal(out, "a <b> & \"c\" 'd'");
    assert_int_equal(field(xml, "AgentID", out, sizeof out), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    char out[16];
    /* too long for out */
    assert_int_equal(field("<A><![CDATA[0123456789abcdefXYZ]]></A>", "A", out, sizeof out), -1);
    assert_int_equal(field("<A>0123456789abcdefXYZ</A>", "A", out, sizeof out), -1);
    /* exactly fits: 15 bytes + NUL */
    assert_int_equal(field("<A>0123456789abcde</A>", "A", out, sizeof out), 1);
    /* no closing tag, unknown entity, nested element */
    assert_int_equal(field("<A>abc", "A", out, sizeof out), -1);
    assert_int_equal(field("<A>&nbsp;</A>", "A", out, sizeof out), -1);
    assert_int_equal(field("<A><B>x</B></A>", "A", out, sizeof out), -1);
    /* a closing tag inside CDATA is not taken for the end of a CDATA value */
    assert_int_equal(field("<A><![CDATA[x</A>y]]></A>", "A", out, sizeof out), -1);
    /* not NUL-terminated input: only len bytes are read */
    const char buf[] = {'<', 'A', '>', 'h', 'i', '<', '/', 'A', '>'};
    assert_int_equal(channel_xml_field(buf, sizeof buf, "A", out, sizeof out), 1);
    assert_string_equal(out, "hi");
    assert_int_equal(channel_xml_field(buf, sizeof buf - 1, "A", out, sizeof out), -1);
    char tag[64];
    memset(tag, 'T', sizeof tag - 1);
    tag[sizeof tag - 1] = '\0';
    assert_int_equal(channel_xml_field(buf, sizeof buf, tag, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

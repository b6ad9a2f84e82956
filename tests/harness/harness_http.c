/*
 * harness_http.c - HTTP clients for the tests: libcurl easy (blocking), curl
 * multi (many concurrent requests), a thread running one request (so a test
 * can act while it is in flight), and raw bytes over TCP (for requests curl
 * refuses to send, such as a garbage request line).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness_internal.h"

#define MH_HTTP_BODY_MAX           (16 * 1024 * 1024) /* response bytes kept */
#define MH_HTTP_DEFAULT_TIMEOUT_MS 30000
#define MH_RAW_READ_MAX            (1024 * 1024)

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

void mh_http_resp_clear(mh_http_resp_t *r)
{
    if (r == NULL) {
        return;
    }
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    mh_http_resp_t *r = arg;
    size_t n = size * nmemb;
    if (r->body_len + n > MH_HTTP_BODY_MAX) {
        return 0; /* aborts the transfer: a test never expects this much */
    }
    char *grown = realloc(r->body, r->body_len + n + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + r->body_len, data, n);
    r->body = grown;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Configure an easy handle; *hdrs_out receives the header list to free after the transfer. */
static CURL *easy_new(const char *method, const char *url, const char *body,
                      const char *const headers[], long timeout_ms, mh_http_resp_t *out,
                      struct curl_slist **hdrs_out)
{
    pthread_once(&s_curl_once, curl_init_once);
    memset(out, 0, sizeof *out);
    CURL *h = curl_easy_init();
    if (h == NULL) {
        return NULL;
    }
    struct curl_slist *hdrs = NULL;
    bool has_ctype = false;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hdrs = curl_slist_append(hdrs, headers[i]);
        if (strncasecmp(headers[i], "content-type:", 13) == 0) {
            has_ctype = true;
        }
    }
    if (body != NULL && !has_ctype) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     timeout_ms > 0 ? timeout_ms : (long)MH_HTTP_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->curl_err);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never go through an http_proxy from the env */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (strcmp(method, "GET") != 0 && !(body != NULL && strcmp(method, "POST") == 0)) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    *hdrs_out = hdrs;
    return h;
}

static void easy_done(CURL *h, CURLcode rc, mh_http_resp_t *out)
{
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    } else if (out->curl_err[0] == '\0') {
        snprintf(out->curl_err, sizeof out->curl_err, "%s", curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &out->seconds);
    out->done_ms = mh_now_ms();
    if (out->body == NULL) {
        out->body = calloc(1, 1);
    }
    if (out->body_len > 0) {
        out->json = json_loadb(out->body, out->body_len, 0, NULL);
    }
}

int mh_http(const char *method, const char *url, const char *body, const char *const headers[],
            long timeout_ms, mh_http_resp_t *out)
{
    struct curl_slist *hdrs = NULL;
    CURL *h = easy_new(method, url, body, headers, timeout_ms, out, &hdrs);
    if (h == NULL) {
        snprintf(out->curl_err, sizeof out->curl_err, "curl_easy_init failed");
        return -1;
    }
    CURLcode rc = curl_easy_perform(h);
    easy_done(h, rc, out);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc == CURLE_OK ? 0 : -1;
}

int mh_http_get(const char *url, mh_http_resp_t *out)
{
    return mh_http("GET", url, NULL, NULL, 0, out);
}

int mh_http_post_json(const char *url, const char *body, mh_http_resp_t *out)
{
    return mh_http("POST", url, body, NULL, 0, out);
}

int mh_post_message(const mh_mesh_t *m, const char *conv, const char *text, const char *mid,
                    mh_http_resp_t *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/conversations/%s/messages", mh_mesh_url(m), conv);
    json_t *body = mid != NULL ? json_pack("{s:s, s:s}", "text", text, "message_id", mid)
                               : json_pack("{s:s}", "text", text);
    char *s = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = mh_http_post_json(url, s, out);
    free(s);
    return rc;
}

int mh_get_conversation(const mh_mesh_t *m, const char *conv, mh_http_resp_t *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s/v1/conversations/%s", mh_mesh_url(m), conv);
    return mh_http_get(url, out);
}

int mh_http_multi(mh_http_req_t *reqs, size_t n, long timeout_ms)
{
    pthread_once(&s_curl_once, curl_init_once);
    CURLM *multi = curl_multi_init();
    CURL **easies = calloc(n, sizeof *easies);
    struct curl_slist **hdrs = calloc(n, sizeof *hdrs);
    int answered = 0;
    if (multi == NULL || easies == NULL || hdrs == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        easies[i] = easy_new(reqs[i].method != NULL ? reqs[i].method : "GET", reqs[i].url,
                             reqs[i].body, reqs[i].headers, timeout_ms, &reqs[i].resp, &hdrs[i]);
        if (easies[i] == NULL) {
            goto cleanup;
        }
        curl_easy_setopt(easies[i], CURLOPT_PRIVATE, &reqs[i]);
        curl_multi_add_handle(multi, easies[i]);
    }
    uint64_t start = mh_now_ms();
    uint64_t deadline = start + (uint64_t)timeout_ms;
    int running = 1;
    while (running > 0 && mh_now_ms() < deadline) {
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            mh_http_req_t *req = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
            easy_done(msg->easy_handle, msg->data.result, &req->resp);
            req->done_at_s = (double)(mh_now_ms() - start) / 1000.0;
            if (msg->data.result == CURLE_OK) {
                answered++;
            }
        }
        if (running > 0) {
            curl_multi_poll(multi, NULL, 0, 50, NULL);
        }
    }
cleanup:
    for (size_t i = 0; easies != NULL && i < n; i++) {
        if (easies[i] != NULL) {
            curl_multi_remove_handle(multi, easies[i]);
            curl_easy_cleanup(easies[i]);
        }
        if (hdrs != NULL) {
            curl_slist_free_all(hdrs[i]);
        }
    }
    free(easies);
    free(hdrs);
    if (multi != NULL) {
        curl_multi_cleanup(multi);
    }
    return answered;
}

struct mh_http_async {
    pthread_t thread;
    char *method;
    char *url;
    char *body;
    long timeout_ms;
    int rc;
    mh_http_resp_t resp;
};

static void *async_main(void *arg)
{
    mh_http_async_t *a = arg;
    a->rc = mh_http(a->method, a->url, a->body, NULL, a->timeout_ms, &a->resp);
    return NULL;
}

mh_http_async_t *mh_http_async_start(const char *method, const char *url, const char *body,
                                     long timeout_ms)
{
    pthread_once(&s_curl_once, curl_init_once);
    mh_http_async_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return NULL;
    }
    a->method = strdup(method);
    a->url = strdup(url);
    a->body = body != NULL ? strdup(body) : NULL;
    a->timeout_ms = timeout_ms;
    if (a->method == NULL || a->url == NULL || (body != NULL && a->body == NULL) ||
        pthread_create(&a->thread, NULL, async_main, a) != 0) {
        free(a->method);
        free(a->url);
        free(a->body);
        free(a);
        return NULL;
    }
    return a;
}

int mh_http_async_finish(mh_http_async_t *a, mh_http_resp_t *out)
{
    if (a == NULL) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    pthread_join(a->thread, NULL);
    *out = a->resp;
    int rc = a->rc;
    free(a->method);
    free(a->url);
    free(a->body);
    free(a);
    return rc;
}

int mh_http_raw(int port, const void *data, size_t len, int timeout_ms, char **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    /* The server may answer and close before it read everything: stop sending then. */
    const char *p = data;
    size_t sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, p + sent, len - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        sent += (size_t)w;
    }
    char *buf = malloc(MH_RAW_READ_MAX + 1);
    size_t got = 0;
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    while (buf != NULL && got < MH_RAW_READ_MAX) {
        uint64_t now = mh_now_ms();
        if (now >= deadline) {
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) != 1) {
            break;
        }
        ssize_t r = recv(fd, buf + got, MH_RAW_READ_MAX - got, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break; /* closed (or reset after an early answer) */
        }
        got += (size_t)r;
    }
    close(fd);
    int status = 0;
    if (buf != NULL) {
        buf[got] = '\0';
        int major = 0, minor = 0;
        if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
            status = 0;
        }
        if (out != NULL) {
            *out = buf;
        } else {
            free(buf);
        }
    }
    return status;
}

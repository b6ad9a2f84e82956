/*
 * httpc.c - the asynchronous HTTP client of mesh_httpc.h: libcurl multi on
 * a uv loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); we turn that into uv_poll_t handles and one
 * uv_timer_t, and feed the readiness back with curl_multi_socket_action.
 * Completed transfers are collected with curl_multi_info_read after every
 * action. Nothing curl-related is done inside curl's own callbacks except
 * bookkeeping, and a timer of 0 ms is honoured from the loop, so a request
 * never completes inside mesh_httpc_request.
 *
 * A request cancelled while curl is running (from a body or header
 * callback) cannot leave the multi there: it moves to the doomed list, its
 * transfer is aborted by the next write, and it is dropped as soon as
 * curl_multi_socket_action returns.
 *
 * Connections are reused: the multi keeps finished transfers' connections
 * in its cache and the next request to the same host:port takes one
 * (HTTP/1.1 keep-alive; no TCP, and for https no TLS, handshake on the
 * critical path). The cache holds at least MESH_HTTPC_CONNS_DEF
 * connections, mesh_httpc_set_max_conns raises that floor, and it grows
 * with the most requests ever in flight at once (capped at
 * MESH_HTTPC_CONNS_MAX): curl's own default (4 x the handles added at the
 * moment) shrinks as a burst drains and closes connections the next burst
 * needs (3 bursts of 32 requests: 46 connections instead of 32). A cached connection the server
 * closed meanwhile is noticed by curl when it is picked (or, if the close races with the request,
 * the request is resent once on a new connection by curl itself, before any byte of a response
 * reached our callbacks), so reuse never turns into a failure and a caller's retry logic sees one
 * attempt.
 */
#include "mesh/mesh_httpc.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mesh/mesh_err.h"

typedef struct httpc_req {
    struct httpc_req *next, *prev;
    mesh_httpc_t *c;
    uint64_t id;
    CURL *easy;
    struct curl_slist *headers;
    char *req_body;
    char *body;
    size_t body_len, body_cap, body_max;
    bool too_big;
    bool cancelled; /* on the doomed list: no callback of any kind */
    int abort_rc;   /* on_data's negative MESH_E* that aborted the transfer */
    long retry_after_s;
    mesh_httpc_cb cb;
    mesh_httpc_data_cb on_data;
    mesh_httpc_header_cb on_header;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
} httpc_req_t;

/* One socket curl asked us to watch. */
typedef struct httpc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    mesh_httpc_t *c;
    struct httpc_sock *next, *prev; /* watched sockets, for destroy */
} httpc_sock_t;

struct mesh_httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    httpc_req_t *reqs;   /* in flight, doubly linked */
    httpc_req_t *doomed; /* cancelled inside curl's callbacks, singly linked */
    httpc_sock_t *socks; /* watched sockets, doubly linked */
    size_t n_reqs;
    size_t max_conns; /* CURLMOPT_MAXCONNECTS as last set */
    uint64_t next_id;
    int dispatching;      /* > 0 while callbacks run: destroy is deferred */
    int in_curl;          /* > 0 inside curl_multi_socket_action */
    bool destroy_pending; /* destroy() was called from a callback */
};

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_release(mesh_httpc_t *c, httpc_sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void req_unlink(mesh_httpc_t *c, httpc_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    c->n_reqs--;
}

static void req_free(httpc_req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->req_body);
    free(r->body);
    free(r);
}

/* Take r out of the multi and free it (its callback is not called). */
static void req_drop(mesh_httpc_t *c, httpc_req_t *r)
{
    curl_multi_remove_handle(c->multi, r->easy);
    req_unlink(c, r);
    req_free(r);
}

/* Drop the requests cancelled while curl was running (now it is not). */
static void drop_doomed(mesh_httpc_t *c)
{
    while (c->doomed) {
        httpc_req_t *r = c->doomed;
        c->doomed = r->next;
        curl_multi_remove_handle(c->multi, r->easy);
        req_free(r);
    }
}

static void really_destroy(mesh_httpc_t *c)
{
    drop_doomed(c);
    while (c->reqs)
        req_drop(c, c->reqs);
    /* Removing the handles made curl release its sockets (socket callback,
     * CURL_POLL_REMOVE closes our polls); the multi can go now. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    /* Sockets of cached connections curl did not hand back. */
    while (c->socks)
        sock_release(c, c->socks);
    uv_timer_stop(&c->timer);
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static int map_curl_error(CURLcode code, const httpc_req_t *r)
{
    if (r->abort_rc < 0)
        return r->abort_rc;
    if (r->too_big)
        return MESH_ETOOBIG;
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return MESH_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return MESH_ENOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return MESH_EINVAL;
    default:
        return MESH_EIO;
    }
}

/* Deliver completed transfers. The caller holds c->dispatching. */
static void check_done(mesh_httpc_t *c)
{
    CURLMsg *msg;
    int left;
    while (!c->destroy_pending && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        httpc_req_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode code = msg->data.result;
        mesh_httpc_resp_t resp = {.retry_after_s = -1};
        if (code == CURLE_OK) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
            resp.retry_after_s = r->retry_after_s;
        } else {
            resp.error = map_curl_error(code, r);
            const char *why = r->abort_rc < 0 ? "aborted by the body callback"
                              : r->too_big    ? "response body too large"
                              : r->errbuf[0]  ? r->errbuf
                                              : curl_easy_strerror(code);
            snprintf(resp.errmsg, sizeof resp.errmsg, "%.*s", (int)sizeof resp.errmsg - 1, why);
            long st = 0;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
            resp.status = st;
        }
        resp.body = r->body ? r->body : "";
        resp.body_len = r->body_len;
        curl_multi_remove_handle(c->multi, r->easy);
        req_unlink(c, r);
        r->cb(&resp, r->arg);
        req_free(r);
    }
}

/* Feed one readiness (or timeout) to curl, then deliver what completed. */
static void action(mesh_httpc_t *c, curl_socket_t fd, int flags)
{
    int running = 0;
    c->dispatching++;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    drop_doomed(c);
    check_done(c);
    c->dispatching--;
    if (c->dispatching == 0 && c->destroy_pending)
        really_destroy(c);
}

static void on_timer(uv_timer_t *t)
{
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    httpc_sock_t *s = p->data;
    mesh_httpc_t *c = s->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    action(c, s->fd, flags);
}

/* curl: watch (or stop watching) socket fd. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    mesh_httpc_t *c = userp;
    httpc_sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_release(c, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* curl: call us back in timeout_ms (-1: cancel). Always through the loop:
 * curl may not be re-entered from its own callbacks. A 0 is due at once
 * (uv_timer_start(0) runs at the next loop iteration, before any wait: no
 * sleep on the critical path; curl asks for 0 when a request is added). */
static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    mesh_httpc_t *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    httpc_req_t *r = userp;
    size_t n = size * nmemb;
    if (r->cancelled || r->c->destroy_pending)
        return 0; /* aborts the transfer; it is dropped without a callback */
    if (r->on_data) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        int rc = r->on_data(status, data, n, r->arg);
        if (r->cancelled || r->c->destroy_pending)
            return 0;
        if (rc < 0) {
            r->abort_rc = rc;
            return 0;
        }
        return n;
    }
    if (n > r->body_max - r->body_len) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Keep Retry-After (delta seconds; the HTTP-date form is ignored). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    httpc_req_t *r = userp;
    size_t n = size * nmemb;
    if (r->cancelled || r->c->destroy_pending)
        return 0; /* aborts the transfer; it is dropped without a callback */
    static const char name[] = "retry-after:";
    const size_t nl = sizeof(name) - 1;
    if (n > nl && strncasecmp(data, name, nl) == 0) {
        size_t i = nl;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        long v = 0;
        bool any = false;
        while (i < n && isdigit((unsigned char)data[i])) {
            if (v < MESH_HTTPC_RETRY_AFTER_MAX)
                v = v * 10 + (data[i] - '0');
            any = true;
            i++;
        }
        if (any)
            r->retry_after_s = v > MESH_HTTPC_RETRY_AFTER_MAX ? MESH_HTTPC_RETRY_AFTER_MAX : v;
    } else if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->retry_after_s = -1; /* a new response head (after 100 Continue) */
    }
    if (r->on_header) {
        r->on_header(data, n, r->arg);
        if (r->cancelled || r->c->destroy_pending)
            return 0;
    }
    return n;
}

static CURLcode s_global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    s_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

mesh_httpc_t *mesh_httpc_new(uv_loop_t *loop)
{
    /* curl_global_init is not thread-safe: once per process. */
    static uv_once_t once = UV_ONCE_INIT;
    if (!loop)
        return NULL;
    uv_once(&once, global_init);
    if (s_global_rc != CURLE_OK)
        return NULL;
    mesh_httpc_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi || uv_timer_init(loop, &c->timer) != 0) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        free(c);
        return NULL;
    }
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timeout);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    c->max_conns = MESH_HTTPC_CONNS_DEF;
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_conns);
    c->next_id = 1;
    return c;
}

/* Let the connection cache hold n connections (never less than it does). */
static void cache_grow(mesh_httpc_t *c, size_t n)
{
    if (n > MESH_HTTPC_CONNS_MAX)
        n = MESH_HTTPC_CONNS_MAX;
    if (n <= c->max_conns)
        return;
    if (curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)n) == CURLM_OK)
        c->max_conns = n;
}

int mesh_httpc_set_max_conns(mesh_httpc_t *c, size_t n)
{
    if (!c || c->destroy_pending || n == 0 || n > MESH_HTTPC_CONNS_MAX)
        return MESH_EINVAL;
    cache_grow(c, n);
    return 0;
}

int mesh_httpc_request(mesh_httpc_t *c, const mesh_httpc_opts_t *o, mesh_httpc_cb cb, void *arg,
                       uint64_t *id)
{
    return mesh_httpc_request_ext(c, o, NULL, cb, arg, id);
}

int mesh_httpc_request_ext(mesh_httpc_t *c, const mesh_httpc_opts_t *o, const mesh_httpc_ext_t *x,
                           mesh_httpc_cb cb, void *arg, uint64_t *id)
{
    if (!c || !o || !cb || !o->url || c->destroy_pending)
        return MESH_EINVAL;
    size_t ulen = strnlen(o->url, MESH_HTTPC_URL_MAX + 1);
    if (ulen > MESH_HTTPC_URL_MAX ||
        (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        return MESH_EINVAL;
    int rc = MESH_ENOMEM;
    httpc_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return MESH_ENOMEM;
    r->c = c;
    r->cb = cb;
    r->arg = arg;
    r->retry_after_s = -1;
    r->body_max = o->body_max ? o->body_max : MESH_HTTPC_BODY_MAX;
    if (x) {
        r->on_data = x->on_data;
        r->on_header = x->on_header;
    }
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    size_t nh = 0;
    for (const char *const *h = o->headers; h && *h; h++) {
        if (++nh > MESH_HTTPC_HEADERS_MAX) {
            rc = MESH_EINVAL;
            goto fail;
        }
        struct curl_slist *l = curl_slist_append(r->headers, *h);
        if (!l)
            goto fail;
        r->headers = l;
    }
    /* No "Expect: 100-continue" round trip for small API bodies. */
    struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
    if (!l)
        goto fail;
    r->headers = l;
    const char *method = o->method ? o->method : "GET";
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Small writes (a request, then nothing) go out at once; curl's default
     * too, said here because the latency depends on it. */
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* Cached connections may sit idle for a while: TCP keep-alive keeps NAT
     * and firewall state alive and notices a peer that vanished. */
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, (long)MESH_HTTPC_KEEPIDLE_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, (long)MESH_HTTPC_KEEPIDLE_S);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(o->timeout_ms ? o->timeout_ms : MESH_HTTPC_TIMEOUT_DEF));
    if (x && x->connect_timeout_ms)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        r->req_body = malloc(o->body_len + 1);
        if (!r->req_body)
            goto fail;
        if (o->body_len)
            memcpy(r->req_body, o->body, o->body_len);
        r->req_body[o->body_len] = '\0';
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->req_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto fail;
    r->id = c->next_id++;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    c->n_reqs++;
    cache_grow(c, c->n_reqs);
    if (id)
        *id = r->id;
    return 0;
fail:
    req_free(r);
    return rc;
}

void mesh_httpc_cancel(mesh_httpc_t *c, uint64_t id)
{
    if (!c || id == 0)
        return;
    for (httpc_req_t *r = c->reqs; r; r = r->next) {
        if (r->id != id)
            continue;
        if (c->in_curl == 0) {
            req_drop(c, r);
            return;
        }
        /* Inside curl's callbacks the handle cannot leave the multi yet. */
        req_unlink(c, r);
        r->cancelled = true;
        r->next = c->doomed;
        r->prev = NULL;
        c->doomed = r;
        return;
    }
}

void mesh_httpc_unref(mesh_httpc_t *c)
{
    if (c && !c->destroy_pending)
        uv_unref((uv_handle_t *)&c->timer);
}

size_t mesh_httpc_inflight(const mesh_httpc_t *c)
{
    return c ? c->n_reqs : 0;
}

void mesh_httpc_destroy(mesh_httpc_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    mesh_httpc_t *c = *c_p;
    *c_p = NULL;
    if (c->destroy_pending)
        return;
    c->destroy_pending = true;
    if (c->dispatching == 0)
        really_destroy(c);
}

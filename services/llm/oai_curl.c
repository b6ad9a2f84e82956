/*
 * oai_curl.c - libcurl multi on libuv (oai_curl.h).
 *
 * The socket callback keeps one poll context per socket curl watches
 * (curl_multi_assign stores it on the socket); CURL_POLL_REMOVE closes it.
 * Every poll event and timer expiry calls curl_multi_socket_action and then
 * reaps finished transfers. Poll contexts free themselves from their close
 * callbacks and never touch the llm_curl_t there, so the multi can go away
 * while they are closing.
 */
#include "oai_curl.h"

#include <stdbool.h>
#include <stdlib.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_log.h"

typedef struct poll_ctx poll_ctx_t;

struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    llm_curl_t *c;
    poll_ctx_t *prev, *next;
};

struct llm_curl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *timer; /* freed from its close callback, which also frees this struct */
    poll_ctx_t *polls;
    int running;
    int in_action; /* nesting depth of socket_action: reaping happens at depth 0 */
};

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void poll_close(llm_curl_t *c, poll_ctx_t *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        c->polls = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    uv_poll_stop(&p->poll);
    p->poll.data = p;
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

/* Reap finished transfers: each gets its done callback once. */
static void check_info(llm_curl_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        llm_curl_req_t *req = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
        curl_multi_remove_handle(c->multi, easy);
        if (req != NULL && req->done != NULL)
            req->done(easy, res, req->arg); /* may add or remove transfers */
    }
}

static void action(llm_curl_t *c, curl_socket_t fd, int flags)
{
    c->in_action++;
    curl_multi_socket_action(c->multi, fd, flags, &c->running);
    c->in_action--;
    if (c->in_action == 0)
        check_info(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_ctx_t *p = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    action(p->c, p->fd, flags);
}

static void on_timeout(uv_timer_t *t)
{
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    llm_curl_t *c = userp;
    poll_ctx_t *p = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (p != NULL) {
            curl_multi_assign(c->multi, s, NULL);
            poll_close(c, p);
        }
        return 0;
    }
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return -1;
        if (uv_poll_init_socket(c->loop, &p->poll, s) != 0) {
            free(p);
            return -1;
        }
        p->fd = s;
        p->c = c;
        p->poll.data = p;
        p->next = c->polls;
        if (c->polls != NULL)
            c->polls->prev = p;
        c->polls = p;
        curl_multi_assign(c->multi, s, p);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&p->poll, ev, on_poll);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    llm_curl_t *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(c->timer);
    else
        uv_timer_start(c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

llm_curl_t *llm_curl_new(uv_loop_t *loop)
{
    static bool s_global;
    if (!s_global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            mesh_log_error("llm", "curl_global_init failed");
            return NULL;
        }
        s_global = true;
    }
    llm_curl_t *c = calloc(1, sizeof(*c));
    uv_timer_t *t = malloc(sizeof(*t));
    if (c == NULL || t == NULL || uv_timer_init(loop, t) != 0) {
        free(c);
        free(t);
        return NULL;
    }
    c->loop = loop;
    c->timer = t;
    t->data = c;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        mesh_log_error("llm", "curl_multi_init failed");
        llm_curl_destroy(&c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

int llm_curl_add(llm_curl_t *c, CURL *easy, llm_curl_req_t *req)
{
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)req);
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK)
        return MESH_EIO;
    return 0;
}

void llm_curl_remove(llm_curl_t *c, CURL *easy)
{
    if (c != NULL && easy != NULL)
        curl_multi_remove_handle(c->multi, easy);
}

int llm_curl_running(const llm_curl_t *c)
{
    return c->running;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data); /* the llm_curl_t */
    free(h);
}

void llm_curl_destroy(llm_curl_t **c_p)
{
    if (c_p == NULL || *c_p == NULL)
        return;
    llm_curl_t *c = *c_p;
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi); /* may report CURL_POLL_REMOVE for cached connections */
    c->multi = NULL;
    while (c->polls != NULL)
        poll_close(c, c->polls);
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
    *c_p = NULL;
}

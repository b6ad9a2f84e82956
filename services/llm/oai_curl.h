/*
 * oai_curl.h - libcurl multi driven by a libuv loop (curl_multi_socket_action
 * with one uv_poll_t per socket curl asks about and one uv_timer_t for curl's
 * timeout). Many transfers run at once on the one loop thread.
 *
 * A transfer: the caller sets up an easy handle, embeds an llm_curl_req_t
 * in its own state (done + arg) and calls llm_curl_add. When the transfer
 * ends, the easy handle is removed from the multi and done(easy, result,
 * arg) is called once, from the loop; the caller then owns the easy handle
 * again (and cleans it up). llm_curl_remove stops a transfer early: no
 * callback follows.
 */
#ifndef OAI_CURL_H
#define OAI_CURL_H

#include <curl/curl.h>
#include <uv.h>

typedef struct llm_curl llm_curl_t;

typedef void (*llm_curl_done_fn)(CURL *easy, CURLcode result, void *arg);

typedef struct {
    llm_curl_done_fn done;
    void *arg;
} llm_curl_req_t;

/* NULL on failure (logged). curl_global_init must have run (llm_curl_new does it once). */
llm_curl_t *llm_curl_new(uv_loop_t *loop);

/* Start a transfer. req must stay valid until done or llm_curl_remove. 0 or MESH_EIO. */
int llm_curl_add(llm_curl_t *c, CURL *easy, llm_curl_req_t *req);

/* Stop a transfer that has not completed; no callback follows. */
void llm_curl_remove(llm_curl_t *c, CURL *easy);

/* Transfers running. */
int llm_curl_running(const llm_curl_t *c);

/*
 * Free the multi (every transfer must have been removed or completed) and
 * close the uv handles; their memory is freed from close callbacks, so the
 * loop must run once more. Safe on NULL; NULLs *c_p.
 */
void llm_curl_destroy(llm_curl_t **c_p);

#endif

/*
 * harness_proc.c - child processes (spawn, stop, kill, restart) and their
 * log files (wait for a line, count lines).
 *
 * Each child runs in its own process group with PR_SET_PDEATHSIG=SIGKILL, so
 * it can be signalled as a group and dies with the test process whatever
 * way the test ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

extern char **environ;

#define MH_ARGV_MAX    32  /* arguments of one child */
#define MH_ENVP_MAX    512 /* environment entries of one child */
#define MH_POLL_MS     5   /* interval of the bounded polls */
#define MH_EXEC_FAILED 127 /* the child's exit code when execve fails */

struct mh_proc {
    char name[64];
    char log_path[MH_PATH_MAX + 80];
    char *argv[MH_ARGV_MAX + 1];
    char *envp[MH_ENVP_MAX + 1];
    pid_t pid; /* 0 when not running */
    int last_exit;
};

static void poll_pause(void)
{
    struct timespec ts = {0, MH_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

static int decode_status(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

/* Add "K=V" to envp, replacing an entry with the same K. 0 or -1 (full/ENOMEM). */
static int env_put(char **envp, size_t *n, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) + 1 : strlen(kv);
    char *copy = strdup(kv);
    if (copy == NULL) {
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(envp[i], kv, klen) == 0) {
            free(envp[i]);
            envp[i] = copy;
            return 0;
        }
    }
    if (*n >= MH_ENVP_MAX) {
        free(copy);
        return -1;
    }
    envp[(*n)++] = copy;
    envp[*n] = NULL;
    return 0;
}

static void proc_free_strings(mh_proc_t *p)
{
    for (size_t i = 0; i < MH_ARGV_MAX && p->argv[i] != NULL; i++) {
        free(p->argv[i]);
        p->argv[i] = NULL;
    }
    for (size_t i = 0; i < MH_ENVP_MAX && p->envp[i] != NULL; i++) {
        free(p->envp[i]);
        p->envp[i] = NULL;
    }
}

static int proc_fork(mh_proc_t *p)
{
    int log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "harness: open %s: %s\n", p->log_path, strerror(errno));
        return -1;
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(log_fd);
        if (null_fd >= 0) {
            close(null_fd);
        }
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(MH_EXEC_FAILED); /* the test died before prctl took effect */
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
        }
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        execve(p->argv[0], p->argv, p->envp);
        dprintf(2, "harness: execve %s: %s\n", p->argv[0], strerror(errno));
        _exit(MH_EXEC_FAILED);
    }
    setpgid(pid, pid); /* also from the parent: no race with an early kill(-pid) */
    close(log_fd);
    if (null_fd >= 0) {
        close(null_fd);
    }
    p->pid = pid;
    mh__registry_add(pid);
    mh_note("started %s pid %d", p->name, (int)pid);
    return 0;
}

mh_proc_t *mh_proc_spawn(const char *name, char *const argv[], const char *const env[])
{
    mh_proc_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log_path, sizeof p->log_path, "%s/%s.log", mh_tmpdir(), name);
    size_t n = 0;
    for (; argv[n] != NULL && n < MH_ARGV_MAX; n++) {
        p->argv[n] = strdup(argv[n]);
        if (p->argv[n] == NULL) {
            goto fail;
        }
    }
    size_t ne = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        /* Drop inherited MESH_* settings: each test states the ones it wants. */
        if (strncmp(*e, "MESH_", 5) == 0) {
            continue;
        }
        if (env_put(p->envp, &ne, *e) != 0) {
            goto fail;
        }
    }
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (env_put(p->envp, &ne, env[i]) != 0) {
            goto fail;
        }
    }
    if (proc_fork(p) != 0) {
        goto fail;
    }
    return p;
fail:
    proc_free_strings(p);
    free(p);
    return NULL;
}

int mh_proc_restart(mh_proc_t *p)
{
    if (p == NULL) {
        return -1;
    }
    if (p->pid != 0) {
        mh_proc_stop(p, 5000);
    }
    return proc_fork(p);
}

/* Reap if exited. true when it has exited (p->pid becomes 0). */
static bool proc_reap(mh_proc_t *p, bool block)
{
    if (p->pid == 0) {
        return true;
    }
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->last_exit = r == p->pid ? decode_status(status) : -1;
        mh__registry_remove(p->pid);
        mh_note("%s pid %d exited with %d", p->name, (int)p->pid, p->last_exit);
        p->pid = 0;
        return true;
    }
    return false;
}

int mh_proc_wait_exit(mh_proc_t *p, int timeout_ms)
{
    if (p == NULL) {
        return -1;
    }
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    while (!proc_reap(p, false)) {
        if (mh_now_ms() >= deadline) {
            return -2;
        }
        poll_pause();
    }
    return p->last_exit;
}

int mh_proc_stop(mh_proc_t *p, int timeout_ms)
{
    if (p == NULL || p->pid == 0) {
        return -1;
    }
    kill(p->pid, SIGTERM);
    int rc = mh_proc_wait_exit(p, timeout_ms);
    if (rc == -2) {
        fprintf(stderr, "harness: %s pid %d ignored SIGTERM for %d ms, killing\n", p->name,
                (int)p->pid, timeout_ms);
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        proc_reap(p, true);
        rc = p->last_exit;
    }
    return rc;
}

void mh_proc_kill9(mh_proc_t *p)
{
    if (p == NULL || p->pid == 0) {
        return;
    }
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    proc_reap(p, true);
}

int mh_proc_signal(mh_proc_t *p, int sig)
{
    if (p == NULL || p->pid == 0) {
        return -1;
    }
    return kill(p->pid, sig);
}

bool mh_proc_alive(mh_proc_t *p)
{
    return p != NULL && !proc_reap(p, false);
}

pid_t mh_proc_pid(const mh_proc_t *p)
{
    return p != NULL ? p->pid : 0;
}

const char *mh_proc_name(const mh_proc_t *p)
{
    return p != NULL ? p->name : "(null)";
}

const char *mh_proc_log(const mh_proc_t *p)
{
    return p != NULL ? p->log_path : "";
}

void mh_proc_destroy(mh_proc_t **p_p)
{
    if (p_p == NULL || *p_p == NULL) {
        return;
    }
    mh_proc_t *p = *p_p;
    if (p->pid != 0) {
        mh_proc_stop(p, 5000);
    }
    proc_free_strings(p);
    free(p);
    *p_p = NULL;
}

size_t mh_log_mark(const mh_proc_t *p)
{
    struct stat st;
    if (p == NULL || stat(p->log_path, &st) != 0) {
        return 0;
    }
    return (size_t)st.st_size;
}

char *mh_log_read(const mh_proc_t *p, size_t from)
{
    return p != NULL ? mh__read_file(p->log_path, from, NULL) : NULL;
}

static bool file_has(const char *path, size_t from, const char *substr)
{
    char *text = mh__read_file(path, from, NULL);
    bool found = text != NULL && strstr(text, substr) != NULL;
    free(text);
    return found;
}

bool mh_log_wait(const mh_proc_t *p, size_t from, const char *substr, int timeout_ms)
{
    if (p == NULL) {
        return false;
    }
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (file_has(p->log_path, from, substr)) {
            return true;
        }
        if (mh_now_ms() >= deadline) {
            return false;
        }
        poll_pause();
    }
}

int mh_log_wait_any(mh_proc_t *const procs[], size_t n, const char *substr, int timeout_ms)
{
    uint64_t deadline = mh_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            if (procs[i] != NULL && file_has(procs[i]->log_path, 0, substr)) {
                return (int)i;
            }
        }
        if (mh_now_ms() >= deadline) {
            return -1;
        }
        poll_pause();
    }
}

int mh_file_count(const char *path, size_t from, const char *substr)
{
    char *text = mh__read_file(path, from, NULL);
    if (text == NULL) {
        return 0;
    }
    int count = 0;
    char *line = text;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        if (strstr(line, substr) != NULL) {
            count++;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    return count;
}

int mh_log_count(const mh_proc_t *p, size_t from, const char *substr)
{
    return p != NULL ? mh_file_count(p->log_path, from, substr) : 0;
}

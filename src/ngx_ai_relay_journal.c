
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The settlement journal: settlements Redis has not acknowledged wait
 * here, in the worker's memory.  They are sent again when the link comes
 * back, and, when Redis answered with an error (LOADING after a restart,
 * OOM, NOSCRIPT after SCRIPT FLUSH), on the live link after a growing
 * pause.  At worker exit they are written to a file
 * "<ai_relay_journal>.<pid>.<n>": written whole under a ".tmp" name,
 * fsync()ed, then renamed, so a file under its final name is complete.
 * Workers claim such files (an atomic rename to ".claimed") at start and
 * whenever the folder changes (a reload's old workers exit after the new
 * ones started), replay them, and delete a claimed file only when Redis
 * acknowledged every entry in it; the claimed files of a worker that died
 * are claimed again.  Replays are safe: SETTLE does nothing for a batch
 * it already settled.
 *
 * Files are touched only at worker start and exit, when the folder's
 * mtime changed (one stat() a second), and when the memory journal is
 * full (ai_relay_journal_max), never on a normal request.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_journal.h"
#include "ngx_ai_relay_lua.h"


/* the version follows SETTLE's arguments: other versions are left alone */
#define NGX_AI_RELAY_JOURNAL_MAGIC  "ngx_ai_relay journal 3\n"
#define NGX_AI_RELAY_JOURNAL_ARGS   8192


#define NGX_AI_RELAY_JOURNAL_BACKOFF_MAX  5000
#define NGX_AI_RELAY_JOURNAL_SCAN         1000


static void ngx_ai_relay_journal_reply(void *data, redisReply *reply);
static void ngx_ai_relay_journal_done(ngx_ai_relay_journal_entry_t *entry);
static void ngx_ai_relay_journal_reject(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry, redisReply *reply);
static void ngx_ai_relay_journal_retry_handler(ngx_event_t *ev);
static void ngx_ai_relay_journal_scan_handler(ngx_event_t *ev);
static void ngx_ai_relay_journal_claim(ngx_ai_relay_main_conf_t *armcf);
static ngx_int_t ngx_ai_relay_journal_write_fd(ngx_fd_t fd, u_char *data,
    size_t len);
static size_t ngx_ai_relay_journal_entry_size(
    ngx_ai_relay_journal_entry_t *entry);
static u_char *ngx_ai_relay_journal_entry_write(u_char *p,
    ngx_ai_relay_journal_entry_t *entry);
static ngx_int_t ngx_ai_relay_journal_parse(ngx_ai_relay_main_conf_t *armcf,
    u_char *p, u_char *last, ngx_ai_relay_journal_file_t *jf,
    ngx_ai_relay_pending_t *shm);
static void ngx_ai_relay_journal_found(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p);
static void ngx_ai_relay_journal_item(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p);
static void ngx_ai_relay_journal_keep(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry);
static ngx_int_t ngx_ai_relay_journal_write(ngx_ai_relay_main_conf_t *armcf,
    ngx_queue_t *q, char *suffix);
static ngx_int_t ngx_ai_relay_journal_read(ngx_ai_relay_main_conf_t *armcf,
    ngx_str_t *name, ngx_ai_relay_journal_file_t *file);
static ngx_str_t *ngx_ai_relay_journal_label(
    ngx_ai_relay_journal_entry_t *entry);


ngx_ai_relay_journal_entry_t *
ngx_ai_relay_journal_entry(ngx_log_t *log, ngx_str_t *args, ngx_uint_t n)
{
    u_char                        *p;
    size_t                         size;
    ngx_uint_t                     i;
    ngx_ai_relay_journal_entry_t  *entry;

    size = sizeof(ngx_ai_relay_journal_entry_t)
           + n * (sizeof(size_t) + sizeof(u_char *));

    for (i = 0; i < n; i++) {
        size += args[i].len;
    }

    entry = ngx_alloc(size, log);
    if (entry == NULL) {
        return NULL;
    }

    entry->argc = n;
    entry->failures = 0;
    entry->armcf = NULL;
    entry->file = NULL;
    entry->shm = NULL;
    entry->shm_tried = 0;
    entry->lens = (size_t *) (entry + 1);
    entry->argv = (u_char **) (entry->lens + n);

    p = (u_char *) (entry->argv + n);

    for (i = 0; i < n; i++) {
        entry->lens[i] = args[i].len;
        entry->argv[i] = p;
        p = ngx_cpymem(p, args[i].data, args[i].len);
    }

    return entry;
}


void
ngx_ai_relay_journal_send(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry)
{
    ngx_ai_relay_journal_send_batch(armcf, entry, NULL, 0);
}


/*
 * A new batch: its copy joins the shared zone in the same step as the
 * requests it settles (drop) leave it.
 */

void
ngx_ai_relay_journal_send_batch(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry, ngx_ai_relay_pending_t **drop,
    ngx_uint_t ndrop)
{
    size_t                    *lens;
    ngx_uint_t                 i;
    const char               **argv;
    ngx_ai_relay_redis_t      *rds;
    ngx_ai_relay_redis_cmd_t  *cmd;

    entry->armcf = armcf;

    /* a copy in the shared zone: a killed worker loses nothing */

    if (entry->shm == NULL && entry->file == NULL && !entry->shm_tried) {
        entry->shm_tried = 1;
        entry->shm = ngx_ai_relay_pending_alloc(armcf,
                                    NGX_AI_RELAY_PENDING_BATCH,
                                    ngx_ai_relay_journal_entry_size(entry));
        if (entry->shm) {
            entry->shm->len = ngx_ai_relay_journal_entry_write(
                                  entry->shm->data, entry)
                              - entry->shm->data;
        }

        if (entry->shm || ndrop) {
            ngx_ai_relay_pending_link(armcf, entry->shm, drop, ndrop);
        }
    }

    rds = ngx_ai_relay_redis_link(armcf);

    argv = ngx_alloc((entry->argc + 2) * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);

    if (rds == NULL || argv == NULL) {
        ngx_free(argv);
        ngx_ai_relay_journal_keep(armcf, entry);
        return;
    }

    lens = (size_t *) (argv + entry->argc + 2);

    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = (const char *) rds->script_sha[NGX_AI_RELAY_SCRIPT_SETTLE].data;
    lens[1] = rds->script_sha[NGX_AI_RELAY_SCRIPT_SETTLE].len;

    for (i = 0; i < entry->argc; i++) {
        argv[i + 2] = (const char *) entry->argv[i];
        lens[i + 2] = entry->lens[i];
    }

    /* hiredis formats the command at once: argv may go */

    cmd = ngx_ai_relay_redis_send(rds, ngx_ai_relay_journal_reply, entry,
                                  (int) entry->argc + 2, argv, lens);
    ngx_free(argv);

    if (cmd == NULL) {
        ngx_ai_relay_journal_keep(armcf, entry);
        return;
    }

    ngx_ai_relay_redis_set_critical(cmd);
}


static void
ngx_ai_relay_journal_reply(void *data, redisReply *reply)
{
    ngx_ai_relay_journal_entry_t  *entry = data;

    ngx_msec_t                 delay;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = entry->armcf;

    if (reply == NULL) {
        /* the link is gone: the reconnect replays */
        ngx_ai_relay_journal_keep(armcf, entry);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "malformed settlement",
                       sizeof("malformed settlement") - 1) == 0)
    {
        /* no retry can help: kept aside for the operator, never dropped */
        ngx_ai_relay_journal_reject(armcf, entry, reply);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        entry->failures++;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ai relay: settlement %V failed: %*s",
                      ngx_ai_relay_journal_label(entry),
                      (size_t) reply->len, reply->str);

        ngx_ai_relay_journal_keep(armcf, entry);

        /*
         * the link is up but Redis refused (LOADING, OOM, NOSCRIPT: the
         * scripts are being loaded again ahead of the retry): try again
         * on this link after a pause that grows to 5 s
         */

        if (!armcf->worker->journal_retry.timer_set) {
            delay = armcf->worker->journal_backoff
                    ? armcf->worker->journal_backoff : 100;
            armcf->worker->journal_backoff =
                ngx_min(delay * 2, NGX_AI_RELAY_JOURNAL_BACKOFF_MAX);
            ngx_add_timer(&armcf->worker->journal_retry, delay);
        }

        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "ai relay: settlement %V acknowledged",
                   ngx_ai_relay_journal_label(entry));

    armcf->worker->journal_backoff = 0;

    ngx_ai_relay_journal_done(entry);
}


/* SETTLE refused the batch itself: to "<journal>.<pid>.<n>.rejected" */

static void
ngx_ai_relay_journal_reject(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry, redisReply *reply)
{
    ngx_queue_t  one;

    ngx_queue_init(&one);
    ngx_queue_insert_tail(&one, &entry->queue);

    if (ngx_ai_relay_journal_write(armcf, &one, ".rejected") != NGX_OK) {
        ngx_queue_remove(&entry->queue);
        ngx_ai_relay_journal_keep(armcf, entry);
        return;
    }

    ngx_queue_remove(&entry->queue);

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "ai relay: settlement %V refused by redis (%*s): kept in "
                  "\"%V.%P.%ui.rejected\" for the operator",
                  ngx_ai_relay_journal_label(entry), (size_t) reply->len,
                  reply->str, &armcf->journal, ngx_pid,
                  armcf->worker->journal_seq - 1);

    ngx_ai_relay_journal_done(entry);
}


/* Redis has it (or a durable file has it): the entry and maybe its file go */

static void
ngx_ai_relay_journal_done(ngx_ai_relay_journal_entry_t *entry)
{
    ngx_ai_relay_journal_file_t  *file;

    if (entry->shm) {
        ngx_ai_relay_pending_remove(entry->armcf, entry->shm);
    }

    file = entry->file;

    if (file && --file->pending == 0) {
        if (ngx_delete_file(file->name) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          ngx_delete_file_n " \"%s\" failed", file->name);
        }

        ngx_queue_remove(&file->queue);
        ngx_free(file);
    }

    ngx_free(entry);
}


static void
ngx_ai_relay_journal_keep(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry)
{
    ngx_int_t    rc;
    ngx_queue_t  one;

    if (armcf->worker->journal_n >= armcf->journal_max) {
        /* memory is full: the file is the last resort, never a drop */

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: settlement journal full, writing "
                      "%V to \"%V\"", ngx_ai_relay_journal_label(entry),
                      &armcf->journal);

        ngx_queue_init(&one);
        ngx_queue_insert_tail(&one, &entry->queue);

        rc = ngx_ai_relay_journal_write(armcf, &one, "");

        ngx_queue_remove(&entry->queue);

        if (rc == NGX_OK) {
            ngx_ai_relay_journal_done(entry);
            return;
        }
    }

    if (entry->failures == 0 || entry->failures == 1) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai relay: settlement %V kept in the journal until "
                      "redis answers", ngx_ai_relay_journal_label(entry));
    }

    ngx_queue_insert_tail(&armcf->worker->journal_queue, &entry->queue);
    armcf->worker->journal_n++;
}


/* the batch id names a settlement in logs: ARGV[1], after the KEYS */

static ngx_str_t *
ngx_ai_relay_journal_label(ngx_ai_relay_journal_entry_t *entry)
{
    ngx_int_t         nkeys;
    static ngx_str_t  unknown = ngx_string("?");

    nkeys = ngx_atoi(entry->argv[0], entry->lens[0]);

    if (nkeys == NGX_ERROR || (ngx_uint_t) nkeys + 1 >= entry->argc) {
        return &unknown;
    }

    entry->label.data = entry->argv[nkeys + 1];
    entry->label.len = entry->lens[nkeys + 1];

    return &entry->label;
}


/* the link is (back) up, or a retry is due: send what waited */

void
ngx_ai_relay_journal_replay(ngx_ai_relay_redis_t *rds)
{
    ngx_queue_t                    pending, *q;
    ngx_ai_relay_main_conf_t      *armcf;
    ngx_ai_relay_journal_entry_t  *entry;

    armcf = rds->data;

    if (ngx_queue_empty(&armcf->worker->journal_queue)) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, rds->log, 0,
                  "ai relay: replaying %ui journaled settlements",
                  armcf->worker->journal_n);

    /* entries that fail again go back to the journal, not to this loop */

    ngx_queue_init(&pending);
    ngx_queue_add(&pending, &armcf->worker->journal_queue);
    ngx_queue_init(&armcf->worker->journal_queue);
    armcf->worker->journal_n = 0;

    while (!ngx_queue_empty(&pending)) {
        q = ngx_queue_head(&pending);
        ngx_queue_remove(q);

        entry = ngx_queue_data(q, ngx_ai_relay_journal_entry_t, queue);
        ngx_ai_relay_journal_send(armcf, entry);
    }
}


static void
ngx_ai_relay_journal_retry_handler(ngx_event_t *ev)
{
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ev->data;

    if (armcf->worker->redis->state != NGX_AI_RELAY_REDIS_READY) {
        /* the reconnect replays */
        return;
    }

    ngx_ai_relay_journal_replay(armcf->worker->redis);
}


/* worker exit: what Redis never acknowledged goes to a file */

void
ngx_ai_relay_journal_save(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_int_t                      rc;
    ngx_queue_t                   *q;
    ngx_ai_relay_journal_entry_t  *entry;

    if (armcf->worker->journal_retry.timer_set) {
        ngx_del_timer(&armcf->worker->journal_retry);
    }

    if (armcf->worker->journal_scan.timer_set) {
        ngx_del_timer(&armcf->worker->journal_scan);
    }

    if (ngx_queue_empty(&armcf->worker->journal_queue)) {
        return;
    }

    rc = ngx_ai_relay_journal_write(armcf, &armcf->worker->journal_queue, "");

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ai relay: %ui settlements saved to the journal "
                      "\"%V\"", armcf->worker->journal_n, &armcf->journal);
    }

    while (!ngx_queue_empty(&armcf->worker->journal_queue)) {
        q = ngx_queue_head(&armcf->worker->journal_queue);
        ngx_queue_remove(q);
        entry = ngx_queue_data(q, ngx_ai_relay_journal_entry_t, queue);

        if (rc == NGX_OK) {
            /* now in the new file: the claimed file it came from may go */
            ngx_ai_relay_journal_done(entry);

        } else {
            /* its claimed file stays, for a worker that outlives us */
            ngx_free(entry);
        }
    }

    armcf->worker->journal_n = 0;
}


/*
 * One file, all or nothing: "<journal>.<pid>.<n>.tmp" written in full
 * with every write() checked, fsync()ed, then renamed to its final name.
 */

static ngx_int_t
ngx_ai_relay_journal_write(ngx_ai_relay_main_conf_t *armcf, ngx_queue_t *q,
    char *suffix)
{
    u_char                        *p, *buf, *name, *tmp;
    size_t                         len, size;
    ngx_fd_t                       fd;
    ngx_err_t                      err;
    ngx_queue_t                   *e;
    ngx_ai_relay_journal_entry_t  *entry;

    size = sizeof(NGX_AI_RELAY_JOURNAL_MAGIC) - 1;

    for (e = ngx_queue_head(q); e != ngx_queue_sentinel(q);
         e = ngx_queue_next(e))
    {
        entry = ngx_queue_data(e, ngx_ai_relay_journal_entry_t, queue);
        size += ngx_ai_relay_journal_entry_size(entry);
    }

    len = armcf->journal.len + 1 + NGX_INT_T_LEN + 1 + NGX_INT_T_LEN
          + ngx_strlen(suffix) + sizeof(".tmp");

    buf = ngx_alloc(size + 2 * len, ngx_cycle->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    name = buf + size;
    tmp = name + len;

    ngx_sprintf(name, "%V.%P.%ui%s%Z", &armcf->journal, ngx_pid,
                armcf->worker->journal_seq++, suffix);
    ngx_sprintf(tmp, "%s.tmp%Z", name);

    p = ngx_cpymem(buf, NGX_AI_RELAY_JOURNAL_MAGIC,
                   sizeof(NGX_AI_RELAY_JOURNAL_MAGIC) - 1);

    for (e = ngx_queue_head(q); e != ngx_queue_sentinel(q);
         e = ngx_queue_next(e))
    {
        entry = ngx_queue_data(e, ngx_ai_relay_journal_entry_t, queue);
        p = ngx_ai_relay_journal_entry_write(p, entry);
    }

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed, settlements lost",
                      tmp);
        ngx_free(buf);
        return NGX_ERROR;
    }

    err = 0;

    if (ngx_ai_relay_journal_write_fd(fd, buf, p - buf) != NGX_OK
        || fsync(fd) == -1)
    {
        err = ngx_errno;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR && err == 0) {
        err = ngx_errno;
    }

    if (err == 0 && ngx_rename_file(tmp, name) == NGX_FILE_ERROR) {
        err = ngx_errno;
    }

    if (err) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, err,
                      "ai relay: writing the journal \"%s\" failed, "
                      "settlements lost", tmp);
        (void) ngx_delete_file(tmp);
        ngx_free(buf);
        return NGX_ERROR;
    }

    ngx_free(buf);

    return NGX_OK;
}


static ngx_int_t
ngx_ai_relay_journal_write_fd(ngx_fd_t fd, u_char *data, size_t len)
{
    ssize_t  n;

    while (len) {
        n = ngx_write_fd(fd, data, len);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            return NGX_ERROR;
        }

        if (n == 0) {
            ngx_set_errno(NGX_ENOSPC);
            return NGX_ERROR;
        }

        data += n;
        len -= n;
    }

    return NGX_OK;
}


/* one entry as the journal holds it: argc, then each length and bytes */

static size_t
ngx_ai_relay_journal_entry_size(ngx_ai_relay_journal_entry_t *entry)
{
    size_t      size;
    ngx_uint_t  i;

    size = NGX_INT_T_LEN + 1;

    for (i = 0; i < entry->argc; i++) {
        size += NGX_SIZE_T_LEN + 1 + entry->lens[i] + 1;
    }

    return size;
}


static u_char *
ngx_ai_relay_journal_entry_write(u_char *p, ngx_ai_relay_journal_entry_t *entry)
{
    ngx_uint_t  i;

    p = ngx_sprintf(p, "%ui\n", entry->argc);

    for (i = 0; i < entry->argc; i++) {
        p = ngx_sprintf(p, "%uz\n", entry->lens[i]);
        p = ngx_cpymem(p, entry->argv[i], entry->lens[i]);
        *p++ = '\n';
    }

    return p;
}


/* worker start: the timers, then the files workers left behind */

void
ngx_ai_relay_journal_load(ngx_ai_relay_main_conf_t *armcf)
{
    ngx_queue_init(&armcf->worker->journal_queue);
    ngx_queue_init(&armcf->worker->journal_files);
    armcf->worker->journal_n = 0;
    armcf->worker->journal_backoff = 0;
    armcf->worker->journal_mtime = 0;

    armcf->worker->journal_retry.handler = ngx_ai_relay_journal_retry_handler;
    armcf->worker->journal_retry.data = armcf;
    armcf->worker->journal_retry.log = ngx_cycle->log;
    armcf->worker->journal_retry.cancelable = 1;

    armcf->worker->journal_scan.handler = ngx_ai_relay_journal_scan_handler;
    armcf->worker->journal_scan.data = armcf;
    armcf->worker->journal_scan.log = ngx_cycle->log;
    armcf->worker->journal_scan.cancelable = 1;

    ngx_ai_relay_journal_claim(armcf);

    ngx_add_timer(&armcf->worker->journal_scan, NGX_AI_RELAY_JOURNAL_SCAN);

    if (armcf->worker->journal_n) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ai relay: %ui journaled settlements to replay",
                      armcf->worker->journal_n);
    }
}


/* once a second: a changed folder may hold files of exited workers */

static void
ngx_ai_relay_journal_scan_handler(ngx_event_t *ev)
{
    ngx_uint_t                 n;
    ngx_ai_relay_main_conf_t  *armcf;

    armcf = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    n = armcf->worker->journal_n;

    ngx_ai_relay_journal_claim(armcf);

    if (armcf->worker->journal_n > n) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "ai relay: %ui journaled settlements of an exited "
                      "worker to replay", armcf->worker->journal_n - n);

        if (armcf->worker->redis->state == NGX_AI_RELAY_REDIS_READY) {
            ngx_ai_relay_journal_replay(armcf->worker->redis);
        }
    }

    ngx_add_timer(ev, NGX_AI_RELAY_JOURNAL_SCAN);
}


/*
 * Which files to claim: "<base>.<pid>.<n>" always (complete by their
 * rename); "<base>.<pid>...(.tmp|.claimed)" only when that pid is gone
 * (a worker killed while writing, or before its replay was acknowledged).
 */

static ngx_int_t
ngx_ai_relay_journal_claimable(u_char *name, size_t len)
{
    u_char     *p, *last;
    ngx_pid_t   pid;

    last = name + len;

    if (len > sizeof(".tmp") - 1
        && ngx_strncmp(last - 4, ".tmp", 4) == 0)
    {
        last -= 4;

    } else if (len > sizeof(".claimed") - 1
               && ngx_strncmp(last - 8, ".claimed", 8) == 0)
    {
        last -= 8;

    } else {
        /* "<pid>.<n>" complete; anything else (".rejected") is not ours */

        for (p = name; p < last && ((*p >= '0' && *p <= '9') || *p == '.');
             p++)
        {
            /* void */
        }

        return p == last;
    }

    for (p = name; p < last && *p >= '0' && *p <= '9'; p++) {
        /* void */
    }

    pid = ngx_atoi(name, p - name);

    if (pid == NGX_ERROR || pid == ngx_pid) {
        return 0;
    }

    return kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH;
}


/* a finished request of a worker that is gone: it is batched again here */

static void
ngx_ai_relay_journal_item(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p)
{
    if (armcf->worker->on_pending_item) {
        armcf->worker->on_pending_item(armcf, p);
    }
}


/* a settlement of a worker that is gone, from the shared zone */

static void
ngx_ai_relay_journal_found(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_pending_t *p)
{
    if (ngx_ai_relay_journal_parse(armcf, p->data, p->data + p->len, NULL, p)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "ai relay: a settlement in \"ai_relay_settle_zone\" "
                      "is not readable, left there");
    }
}


static void
ngx_ai_relay_journal_claim(ngx_ai_relay_main_conf_t *armcf)
{
    u_char                       *base, *slash;
    size_t                        blen;
    ngx_dir_t                     dir;
    ngx_str_t                     dname, claimed, src;
    ngx_file_info_t               fi;
    ngx_ai_relay_journal_file_t  *file;

    /* settlements of workers killed outright, from the shared zone */

    (void) ngx_ai_relay_pending_claim(armcf, ngx_ai_relay_journal_found,
                                      ngx_ai_relay_journal_item);

    slash = NULL;

    for (base = armcf->journal.data;
         base < armcf->journal.data + armcf->journal.len;
         base++)
    {
        if (*base == '/') {
            slash = base;
        }
    }

    if (slash == NULL) {
        return;
    }

    dname.len = slash - armcf->journal.data;
    dname.data = ngx_alloc(dname.len + 1, ngx_cycle->log);
    if (dname.data == NULL) {
        return;
    }

    ngx_memcpy(dname.data, armcf->journal.data, dname.len);
    dname.data[dname.len] = '\0';

    if (ngx_file_info(dname.data, &fi) == NGX_FILE_ERROR
        || (armcf->worker->journal_mtime
            && ngx_file_mtime(&fi) == armcf->worker->journal_mtime
            && ngx_time() > armcf->worker->journal_mtime + 1))
    {
        /* no folder, or unchanged since the last look */
        ngx_free(dname.data);
        return;
    }

    armcf->worker->journal_mtime = ngx_file_mtime(&fi);

    base = slash + 1;
    blen = armcf->journal.data + armcf->journal.len - base;

    if (ngx_open_dir(&dname, &dir) == NGX_ERROR) {
        ngx_free(dname.data);
        return;
    }

    for ( ;; ) {
        if (ngx_read_dir(&dir) == NGX_ERROR) {
            break;
        }

        if (ngx_de_namelen(&dir) <= blen + 1
            || ngx_strncmp(ngx_de_name(&dir), base, blen) != 0
            || ngx_de_name(&dir)[blen] != '.'
            || !ngx_ai_relay_journal_claimable(ngx_de_name(&dir) + blen + 1,
                                               ngx_de_namelen(&dir) - blen
                                               - 1))
        {
            continue;
        }

        src.len = dname.len + 1 + ngx_de_namelen(&dir);
        src.data = ngx_alloc(src.len + 1, ngx_cycle->log);
        file = ngx_alloc(sizeof(ngx_ai_relay_journal_file_t)
                         + armcf->journal.len + 2 * NGX_INT_T_LEN
                         + sizeof("...claimed"), ngx_cycle->log);

        if (src.data == NULL || file == NULL) {
            ngx_free(src.data);
            ngx_free(file);
            break;
        }

        ngx_sprintf(src.data, "%V/%s%Z", &dname, ngx_de_name(&dir));

        file->name = (u_char *) (file + 1);
        file->pending = 0;
        claimed.data = file->name;
        claimed.len = ngx_sprintf(claimed.data, "%V.%P.%ui.claimed%Z",
                                  &armcf->journal, ngx_pid,
                                  armcf->worker->journal_seq++)
                      - claimed.data - 1;

        /* rename() is atomic: one worker wins each file */

        if (ngx_rename_file(src.data, claimed.data) != 0) {
            ngx_free(src.data);
            ngx_free(file);
            continue;
        }

        ngx_queue_insert_tail(&armcf->worker->journal_files, &file->queue);

        if (ngx_ai_relay_journal_read(armcf, &claimed, file) == NGX_OK
            && file->pending == 0)
        {
            (void) ngx_delete_file(file->name);
            ngx_queue_remove(&file->queue);
            ngx_free(file);
        }

        ngx_free(src.data);
    }

    (void) ngx_close_dir(&dir);
    ngx_free(dname.data);
}


static ngx_int_t
ngx_ai_relay_journal_read(ngx_ai_relay_main_conf_t *armcf, ngx_str_t *name,
    ngx_ai_relay_journal_file_t *jf)
{
    u_char           *buf, *p, *last;
    ssize_t           n;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = ngx_cycle->log;
    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    buf = ngx_alloc(ngx_file_size(&fi) + 1, ngx_cycle->log);
    if (buf == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, buf, ngx_file_size(&fi), 0);
    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) ngx_file_size(&fi)
        || n < (ssize_t) sizeof(NGX_AI_RELAY_JOURNAL_MAGIC) - 1
        || ngx_strncmp(buf, NGX_AI_RELAY_JOURNAL_MAGIC,
                       sizeof(NGX_AI_RELAY_JOURNAL_MAGIC) - 1) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "ai relay: journal \"%V\" is not readable, "
                      "left in place", name);
        ngx_free(buf);
        return NGX_ERROR;
    }

    p = buf + sizeof(NGX_AI_RELAY_JOURNAL_MAGIC) - 1;
    last = buf + n;

    if (ngx_ai_relay_journal_parse(armcf, p, last, jf, NULL) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "ai relay: journal \"%V\" is truncated; its complete "
                      "entries are replayed", name);
    }

    ngx_free(buf);

    return NGX_OK;
}


/*
 * Entries from p to last, each to the memory journal: NGX_ERROR if the
 * bytes end inside one (what came before it is kept).
 */

static ngx_int_t
ngx_ai_relay_journal_parse(ngx_ai_relay_main_conf_t *armcf, u_char *p,
    u_char *last, ngx_ai_relay_journal_file_t *jf, ngx_ai_relay_pending_t *shm)
{
    ngx_int_t                      argc, i, len;
    ngx_str_t                     *args;
    ngx_ai_relay_journal_entry_t  *entry;

    args = ngx_alloc(NGX_AI_RELAY_JOURNAL_ARGS * sizeof(ngx_str_t),
                     ngx_cycle->log);
    if (args == NULL) {
        return NGX_ERROR;
    }

#define ngx_ai_relay_number(v)                                                \
    {                                                                         \
        u_char  *nl = ngx_strlchr(p, last, '\n');                             \
        if (nl == NULL) goto broken;                                          \
        v = ngx_atoi(p, nl - p);                                              \
        if (v == NGX_ERROR) goto broken;                                      \
        p = nl + 1;                                                           \
    }

    while (p < last) {
        ngx_ai_relay_number(argc);

        if (argc <= 0 || argc > NGX_AI_RELAY_JOURNAL_ARGS) {
            goto broken;
        }

        for (i = 0; i < argc; i++) {
            ngx_ai_relay_number(len);

            if (last - p < len + 1) {
                goto broken;
            }

            args[i].data = p;
            args[i].len = len;
            p += len + 1;
        }

        entry = ngx_ai_relay_journal_entry(ngx_cycle->log, args, argc);
        if (entry == NULL) {
            break;
        }

        entry->armcf = armcf;

        if (jf) {
            entry->file = jf;
            jf->pending++;
        }

        if (shm) {
            entry->shm = shm;
            entry->shm_tried = 1;
        }

        ngx_queue_insert_tail(&armcf->worker->journal_queue, &entry->queue);
        armcf->worker->journal_n++;
    }

#undef ngx_ai_relay_number

    ngx_free(args);
    return NGX_OK;

broken:

    ngx_free(args);
    return NGX_ERROR;
}


/*
 * Where the journal lives.  The default is a folder beside nginx's own
 * temporary folders (Debian: /var/lib/nginx/ai_relay/journal.<pid>): the
 * master creates it and gives it to the worker user as it does for the
 * client body and proxy temporary files, so a packaged nginx whose
 * prefix is read-only can keep its settlements.
 */

char *
ngx_ai_relay_journal_conf(ngx_conf_t *cf, ngx_ai_relay_main_conf_t *armcf)
{
    u_char      *p;
    size_t       len;
    ngx_str_t    dir;
    ngx_path_t  *path;

    static u_char  temp[] = NGX_HTTP_CLIENT_TEMP_PATH;

    if (armcf->journal.len) {
        if (ngx_conf_full_name(cf->cycle, &armcf->journal, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /* the folder of client_body_temp_path's built-in default */

    for (p = temp + sizeof(temp) - 1; p > temp && p[-1] != '/'; p--) {
        /* void */
    }

    len = p - temp;

    dir.len = len + sizeof("ai_relay") - 1;
    dir.data = ngx_pnalloc(cf->pool, dir.len + 1);
    if (dir.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(dir.data, "%*sai_relay%Z", len, temp);

    if (ngx_conf_full_name(cf->cycle, &dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    armcf->journal.len = dir.len + sizeof("/journal") - 1;
    armcf->journal.data = ngx_pnalloc(cf->pool, armcf->journal.len + 1);
    if (armcf->journal.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(armcf->journal.data, "%V/journal%Z", &dir);

    if (!armcf->enabled) {
        return NGX_CONF_OK;
    }

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = dir;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    armcf->journal_path = path;

    return NGX_CONF_OK;
}


/* may the worker user do "want" (write and search, or search) there? */

static ngx_int_t
ngx_ai_relay_journal_may(ngx_core_conf_t *ccf, ngx_file_info_t *fi,
    ngx_uint_t write)
{
    int         n, i;
    gid_t       groups[64];
    mode_t      want;
    ngx_uint_t  member;

    if (ccf->user == 0) {
        return 1;
    }

    if (fi->st_uid == ccf->user) {
        want = write ? (S_IWUSR|S_IXUSR) : S_IXUSR;
        return (fi->st_mode & want) == want;
    }

    member = (fi->st_gid == ccf->group);

    if (!member && ccf->username) {
        n = 64;

        if (getgrouplist(ccf->username, ccf->group, groups, &n) != -1) {
            for (i = 0; i < n; i++) {
                if (groups[i] == fi->st_gid) {
                    member = 1;
                    break;
                }
            }
        }
    }

    if (member) {
        want = write ? (S_IWGRP|S_IXGRP) : S_IXGRP;

    } else {
        want = write ? (S_IWOTH|S_IXOTH) : S_IXOTH;
    }

    return (fi->st_mode & want) == want;
}


/*
 * The master (and nginx -t) checks, before any worker exists, that the
 * worker user can create files in the journal's folder: settlements
 * Redis did not acknowledge would otherwise be lost at worker exit.
 * At start and in nginx -t that refuses the configuration; on a reload
 * it is an alert (failing init_module would end the running master).
 */

ngx_int_t
ngx_ai_relay_journal_check(ngx_cycle_t *cycle,
    ngx_ai_relay_main_conf_t *armcf)
{
    u_char           *dir, *p, *last;
    ngx_err_t         err;
    ngx_uint_t        level, fatal;
    const char       *why;
    ngx_file_info_t   fi;
    ngx_core_conf_t  *ccf;

    if (!armcf->enabled || ngx_process == NGX_PROCESS_SIGNALLER) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    dir = ngx_pnalloc(cycle->pool, armcf->journal.len + 1);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    last = ngx_cpymem(dir, armcf->journal.data, armcf->journal.len);
    *last = '\0';

    while (last > dir && last[-1] != '/') {
        last--;
    }

    if (last > dir + 1) {
        last--;
    }

    *last = '\0';

    why = NULL;
    err = 0;

    if (ngx_file_info(dir, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;
        why = "cannot be found";

    } else if (!ngx_is_dir(&fi)) {
        why = "is not a folder";

    } else if (ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT) {

        /* not run by root: workers are this very user */

        if (access((char *) dir, W_OK|X_OK) != 0) {
            err = ngx_errno;
            why = "is not writable";
        }

    } else if (!ngx_ai_relay_journal_may(ccf, &fi, 1)) {
        why = "is not writable";

    } else {
        /* every folder above it must let the worker user pass */

        for (p = dir + 1; p < last && why == NULL; p++) {
            if (*p != '/') {
                continue;
            }

            *p = '\0';

            if (ngx_file_info(dir, &fi) != NGX_FILE_ERROR
                && !ngx_ai_relay_journal_may(ccf, &fi, 0))
            {
                why = "is not reachable";
            }

            *p = '/';
        }
    }

    if (why == NULL) {
        return NGX_OK;
    }

    fatal = ngx_test_config || ngx_is_init_cycle(cycle->old_cycle);
    level = fatal ? NGX_LOG_EMERG : NGX_LOG_ALERT;

    ngx_log_error(level, cycle->log, err,
                  "ai relay: the journal folder \"%s\" %s for the worker "
                  "user \"%s\": settlements Redis does not acknowledge "
                  "would be lost; make it writable for that user or set "
                  "\"ai_relay_journal\"", dir, why,
                  ccf->username ? ccf->username : "(this user)");

    return fatal ? NGX_ERROR : NGX_OK;
}


/* each worker at start: can it create its journal file? */

void
ngx_ai_relay_journal_probe(ngx_ai_relay_main_conf_t *armcf)
{
    u_char    *name;
    ngx_fd_t   fd;

    name = ngx_alloc(armcf->journal.len + sizeof("-probe.") + NGX_INT_T_LEN,
                     ngx_cycle->log);
    if (name == NULL) {
        return;
    }

    /* not "<journal>.<...>": another worker's load must not claim it */

    ngx_sprintf(name, "%V-probe.%P%Z", &armcf->journal, ngx_pid);

    fd = ngx_open_file(name, NGX_FILE_WRONLY, NGX_FILE_CREATE_OR_OPEN,
                       NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        armcf->worker->journal_unwritable = 1;

        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "ai relay: this worker cannot create its journal "
                      "file \"%V.%P\": settlements Redis does not "
                      "acknowledge would be lost", &armcf->journal, ngx_pid);

    } else {
        armcf->worker->journal_unwritable = 0;
        (void) ngx_close_file(fd);
        (void) ngx_delete_file(name);
    }

    ngx_free(name);
}

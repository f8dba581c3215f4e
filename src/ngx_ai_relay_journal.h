
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_JOURNAL_H_INCLUDED_
#define _NGX_AI_RELAY_JOURNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_module.h"
#include "ngx_ai_relay_pending.h"


/* a journal file this worker claimed: deleted once all its entries are */
typedef struct {
    ngx_queue_t                  queue;
    ngx_uint_t                   pending;    /* entries not yet settled */
    u_char                      *name;       /* NUL ended */
} ngx_ai_relay_journal_file_t;


/* one settlement: the arguments of EVALSHA after the script's SHA1 */
typedef struct {
    ngx_queue_t                  queue;
    ngx_uint_t                   argc;
    ngx_uint_t                   failures;
    ngx_ai_relay_main_conf_t    *armcf;
    ngx_ai_relay_journal_file_t *file;       /* read from, or NULL */
    ngx_ai_relay_pending_t      *shm;        /* its copy in the zone */
    unsigned                     shm_tried:1;
    ngx_str_t                    label;      /* the batch id, for logs */
    size_t                      *lens;
    u_char                     **argv;
} ngx_ai_relay_journal_entry_t;


ngx_ai_relay_journal_entry_t *ngx_ai_relay_journal_entry(ngx_log_t *log,
    ngx_str_t *args, ngx_uint_t n);
void ngx_ai_relay_journal_send(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry);
void ngx_ai_relay_journal_send_batch(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_journal_entry_t *entry, ngx_ai_relay_pending_t **drop,
    ngx_uint_t ndrop);
void ngx_ai_relay_journal_replay(ngx_ai_relay_redis_t *rds);
void ngx_ai_relay_journal_load(ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_journal_save(ngx_ai_relay_main_conf_t *armcf);
char *ngx_ai_relay_journal_conf(ngx_conf_t *cf,
    ngx_ai_relay_main_conf_t *armcf);
ngx_int_t ngx_ai_relay_journal_check(ngx_cycle_t *cycle,
    ngx_ai_relay_main_conf_t *armcf);
void ngx_ai_relay_journal_probe(ngx_ai_relay_main_conf_t *armcf);


#endif /* _NGX_AI_RELAY_JOURNAL_H_INCLUDED_ */

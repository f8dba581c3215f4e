
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Incremental Server-Sent Events parser.
 *
 * No nginx headers: this file is built into the nginx module and into the
 * standalone unit tests and fuzzer.  It follows the WHATWG SSE grammar:
 *
 *   - lines end in LF, CRLF or CR; a CR that ends one chunk and an LF that
 *     starts the next are ONE line end;
 *   - "data:" values are joined with "\n", one space after the colon is
 *     removed, "event:" sets the event name, lines starting with ':' are
 *     comments, other fields (id, retry, ...) are ignored;
 *   - a blank line dispatches the event if it had a data line or a name;
 *   - "data: [DONE]" sets the sticky sse->done flag (the event is still
 *     dispatched).
 *
 * The parser is a byte state machine: it never buffers a line, only (one
 * copy of) the data of the current event (and the event name, inline,
 * truncated to NGX_AI_RELAY_SSE_NAME_LEN bytes), so only data lines are
 * bounded, by max_event.  An event whose data would exceed max_event (or
 * whose buffer cannot be allocated) is still dispatched, at its right
 * boundary, with "truncated" set and no data; later events are parsed
 * normally.  Nothing ever fails the stream.
 *
 * Memory: an idle parser is just this struct.  The data buffer is taken
 * from the caller's allocator on the first data byte and grown by
 * doubling up to max_event; old buffers are never freed (a pool).
 *
 * Use:
 *
 *     ngx_ai_relay_sse_init(&sse, alloc, pool, 1024 * 1024);
 *
 *     while (len) {
 *         n = ngx_ai_relay_sse_feed(&sse, p, len);
 *         p += n;
 *         len -= n;
 *
 *         if (sse.event_ready) {
 *             the event ends right before p (the byte offset of its end);
 *             use sse.event_name, sse.data, sse.data_len, sse.truncated
 *         }
 *     }
 *
 *     at end of stream:
 *
 *     if (ngx_ai_relay_sse_finish(&sse)) {
 *         use the last event the same way
 *     }
 *
 * feed() returns right after the line end that dispatched an event, so the
 * caller knows at which input byte every event ends; an event's bytes are
 * everything since the previous event ended (or the stream started),
 * including comments and blank lines before it.  It may return 0 with
 * event_ready set: that happens when the dispatching blank line ended in
 * a CR which was the last byte of the previous chunk, and this chunk does
 * not start with LF (if it does, the LF is consumed and belongs to the
 * event).  The event data stays valid until the next feed() or finish().
 *
 * End of stream: the SSE specification discards an unterminated last
 * event.  We deliberately dispatch it instead, with "unterminated" set, so
 * that the caller can still account for a final usage chunk sent by a
 * server that closed without the blank line; the caller may ignore it.
 */


#ifndef _NGX_AI_RELAY_SSE_H_INCLUDED_
#define _NGX_AI_RELAY_SSE_H_INCLUDED_


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_SSE_NAME_LEN   64
#define NGX_AI_RELAY_SSE_MAX_EVENT  (1024 * 1024)  /* max_event == 0 */


typedef void *(*ngx_ai_relay_sse_alloc_pt)(void *data, size_t size);


typedef struct {
    /* set by ngx_ai_relay_sse_init() */
    ngx_ai_relay_sse_alloc_pt   alloc;
    void                       *alloc_data;
    size_t                      max_event;

    /* the dispatched event, valid while event_ready is set */
    u_char                     *event_name;
    size_t                      event_name_len;
    u_char                     *data;
    size_t                      data_len;

    /* statistics */
    uint64_t                    events;         /* dispatched */
    uint64_t                    truncated_events;

    unsigned                    event_ready:1;
    unsigned                    truncated:1;    /* of the ready event */
    unsigned                    unterminated:1; /* dispatched by finish() */
    unsigned                    done:1;         /* sticky: [DONE] seen */
    unsigned                    nomem:1;        /* sticky: alloc failed */

    /* private */
    u_char                     *buf;
    size_t                      buf_len;
    size_t                      buf_cap;
    size_t                      name_len;
    u_char                      name[NGX_AI_RELAY_SSE_NAME_LEN];
    u_char                      field[6];

    unsigned                    state:3;
    unsigned                    field_len:3;
    unsigned                    kind:2;
    unsigned                    has_data:1;
    unsigned                    overflow:1;
    unsigned                    cr:1;
    unsigned                    pending:1;
} ngx_ai_relay_sse_t;


void ngx_ai_relay_sse_init(ngx_ai_relay_sse_t *sse,
    ngx_ai_relay_sse_alloc_pt alloc, void *alloc_data, size_t max_event);
size_t ngx_ai_relay_sse_feed(ngx_ai_relay_sse_t *sse, const u_char *p,
    size_t len);
int ngx_ai_relay_sse_finish(ngx_ai_relay_sse_t *sse);

/* nonzero if bytes of an unfinished line or event are pending */
int ngx_ai_relay_sse_partial(ngx_ai_relay_sse_t *sse);


#endif /* _NGX_AI_RELAY_SSE_H_INCLUDED_ */

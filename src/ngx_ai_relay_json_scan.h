
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_JSON_SCAN_H_INCLUDED_
#define _NGX_AI_RELAY_JSON_SCAN_H_INCLUDED_


/*
 * A strict, single-pass JSON validator and top-level object scanner for
 * request bodies.  It needs no nginx headers and allocates nothing.
 *
 * ngx_ai_relay_json_scan() validates a whole document against RFC 8259
 * (one value, strict numbers, strict escapes including \uXXXX surrogate
 * pairs, raw bytes must be well-formed UTF-8: no overlongs, no UTF-8
 * encoded surrogates, nothing above U+10FFFF, no BOM) and records, for
 * every member of the top-level object, the byte spans of its key and of
 * its value.  The caller then rewrites single members by splicing edits
 * into the original bytes, so every other byte (numbers, unknown fields,
 * key order, whitespace) reaches the upstream unchanged.
 *
 * Policy beyond RFC 8259:
 *   - the top-level value must be an object (NGX_AI_RELAY_JSON_ERR_NOT_OBJECT,
 *     reported only for an otherwise valid document);
 *   - duplicate keys in the top-level object are rejected
 *     (NGX_AI_RELAY_JSON_ERR_DUPLICATE, reported only for an otherwise valid
 *     document; keys are compared after unescaping, so "model" and
 *     "mo\u0064el" are duplicates).  Parsers disagree on which duplicate
 *     wins, so accepting them would let the relay bill one model while the
 *     upstream serves another.  Duplicates inside nested objects are allowed;
 *     ngx_ai_relay_json_object_find() returns the last one, as most parsers
 *     do.  The check compares key hashes pairwise after the scan,
 *     O(nmembers^2) integer compares, so keep members_max in the hundreds;
 *   - lone surrogate escapes ("\uD800") are rejected;
 *   - "\u0000" is accepted (RFC 8259 allows it); getters return lengths, so
 *     a decoded value may contain NUL bytes;
 *   - nesting deeper than max_depth containers is rejected
 *     (NGX_AI_RELAY_JSON_ERR_DEPTH).  The top-level object is depth 1.
 *
 * Text measurement (for prompt token estimates): while validating, the
 * scanner counts the DECODED content of every string VALUE in the document
 * (object keys at any depth are not counted):
 *   - str_ascii: code points below U+0080; a raw ASCII byte counts 1, an
 *     escape such as \n, \" or \u0041 counts 1;
 *   - str_non_ascii: code points U+0080 and above; a raw 2, 3 or 4 byte
 *     UTF-8 sequence counts 1, a \uXXXX escape or an escaped surrogate pair
 *     counts 1.
 * The same two counters are kept per top-level member (over the strings
 * inside that member's value), so the caller can sum "messages", "input",
 * "prompt", "contents", "system" and so on without a second pass.
 *
 * Offsets are byte offsets from the start of the body.
 */


#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_JSON_DEFAULT_DEPTH  512
#define NGX_AI_RELAY_JSON_DEPTH_LIMIT    4096


typedef enum {
    NGX_AI_RELAY_JSON_OK = 0,
    NGX_AI_RELAY_JSON_ERR_SYNTAX,       /* malformed JSON */
    NGX_AI_RELAY_JSON_ERR_UTF8,         /* raw bytes are not UTF-8 */
    NGX_AI_RELAY_JSON_ERR_DEPTH,        /* more than max_depth containers */
    NGX_AI_RELAY_JSON_ERR_NOT_OBJECT,   /* valid JSON, but not an object */
    NGX_AI_RELAY_JSON_ERR_DUPLICATE,    /* valid JSON, duplicate top key */
    NGX_AI_RELAY_JSON_ERR_MEMBERS,      /* more than members_max members */
    NGX_AI_RELAY_JSON_ERR_RANGE         /* reject_overflow: a number */
} ngx_ai_relay_json_rc_e;


typedef enum {
    NGX_AI_RELAY_JSON_NONE = 0,
    NGX_AI_RELAY_JSON_STRING,
    NGX_AI_RELAY_JSON_NUMBER,
    NGX_AI_RELAY_JSON_OBJECT,
    NGX_AI_RELAY_JSON_ARRAY,
    NGX_AI_RELAY_JSON_TRUE,
    NGX_AI_RELAY_JSON_FALSE,
    NGX_AI_RELAY_JSON_NULL
} ngx_ai_relay_json_type_e;


typedef enum {
    NGX_AI_RELAY_JSON_GET_OK = 0,
    NGX_AI_RELAY_JSON_GET_MISSING,      /* no such member */
    NGX_AI_RELAY_JSON_GET_TYPE,         /* present, of another type */
    NGX_AI_RELAY_JSON_GET_RANGE         /* not an exact int64, or too long */
} ngx_ai_relay_json_get_e;


/* what ngx_ai_relay_json_edit_include_usage() decided */
typedef enum {
    NGX_AI_RELAY_JSON_USAGE_PRESENT = 0, /* already true: no edit */
    NGX_AI_RELAY_JSON_USAGE_ADD_OPTIONS, /* adds "stream_options":{...} */
    NGX_AI_RELAY_JSON_USAGE_SET_OPTIONS, /* "stream_options":null replaced */
    NGX_AI_RELAY_JSON_USAGE_ADD_FIELD,   /* adds "include_usage":true */
    NGX_AI_RELAY_JSON_USAGE_SET_FIELD,   /* false or null replaced by true */
    NGX_AI_RELAY_JSON_USAGE_CONFLICT     /* stream_options is neither object
                                          * nor null, or include_usage is
                                          * neither boolean nor null: no
                                          * edit */
} ngx_ai_relay_json_usage_e;


typedef struct {
    size_t                      key_start;   /* after the opening quote */
    size_t                      key_end;     /* at the closing quote */
    size_t                      value_start; /* first byte of the value */
    size_t                      value_end;   /* one past its last byte */
    uint64_t                    str_ascii;
    uint64_t                    str_non_ascii;
    uint32_t                    key_hash;    /* internal */
    unsigned                    type:4;      /* ngx_ai_relay_json_type_e */
    unsigned                    key_escaped:1;
    unsigned                    value_escaped:1; /* string with escapes */
} ngx_ai_relay_json_member_t;


typedef struct {
    /*
     * Set by the caller; ngx_ai_relay_json_scan_init() sets max_depth to
     * NGX_AI_RELAY_JSON_DEFAULT_DEPTH (0 or more than DEPTH_LIMIT means
     * DEPTH_LIMIT).  With members NULL the scan only validates (no member
     * spans, no duplicate check, no lookups or edits).  More than
     * members_max top-level members stop the scan with ERR_MEMBERS (the
     * rest of the document is not validated).
     */
    ngx_ai_relay_json_member_t  *members;
    size_t                       members_max;
    unsigned                     max_depth;

    /*
     * Stricter than RFC 8259, all off after ngx_ai_relay_json_scan_init(),
     * all as jansson is by default (error bodies are read exactly as they
     * were with jansson): reject_nul rejects "\u0000" in strings and keys
     * (ERR_SYNTAX); reject_overflow rejects an integer (no fraction, no
     * exponent) outside int64_t and a number whose magnitude rounds beyond
     * DBL_MAX (ERR_RANGE); with value_depth, max_depth counts values
     * rather than containers, as JSON_PARSER_MAX_DEPTH does: a value of
     * any type inside max_depth containers is too deep (ERR_DEPTH; an
     * empty container at that depth is not).
     */
    unsigned                     reject_nul:1;
    unsigned                     reject_overflow:1;
    unsigned                     value_depth:1;

    /* results */
    size_t                       nmembers;
    size_t                       obj_start;  /* offset of the top '{' */
    size_t                       obj_end;    /* offset of the top '}' */
    uint64_t                     str_ascii;
    uint64_t                     str_non_ascii;

    int                          rc;         /* ngx_ai_relay_json_rc_e */
    const char                  *err;        /* static text, or NULL */
    size_t                       err_offset;
    size_t                       err_member; /* DUPLICATE: the 2nd one */

    /* members appended to the top-level object by the edit helpers */
    size_t                       nadded;
} ngx_ai_relay_json_scan_t;


/* replace [start, end) by data; start == end inserts */
typedef struct {
    size_t                       start;
    size_t                       end;
    const unsigned char         *data;
    size_t                       len;
} ngx_ai_relay_json_edit_t;


typedef struct {
    const unsigned char         *data;
    size_t                       len;
} ngx_ai_relay_json_piece_t;


void ngx_ai_relay_json_scan_init(ngx_ai_relay_json_scan_t *scan,
    ngx_ai_relay_json_member_t *members, size_t members_max);
int ngx_ai_relay_json_scan(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, size_t len);

/* "invalid UTF-8 at offset 123", "duplicate key \"model\"", ...; NUL-ended */
size_t ngx_ai_relay_json_strerror(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, char *buf, size_t size);

/* lookups: name is the unescaped key; only after NGX_AI_RELAY_JSON_OK */
ngx_ai_relay_json_member_t *ngx_ai_relay_json_find(
    const ngx_ai_relay_json_scan_t *scan, const unsigned char *body,
    const char *name, size_t name_len);

/*
 * One level down: within the (validated) object value of obj, find member
 * name; the last of duplicates wins.  Returns 1 and fills *out, or 0.
 * out->str_* counters are not filled.
 */
int ngx_ai_relay_json_object_find(const unsigned char *body,
    const ngx_ai_relay_json_member_t *obj, const char *name,
    size_t name_len, ngx_ai_relay_json_member_t *out);

/*
 * The elements of the (validated) array value of arr, one per call: *pos
 * starts at 0; returns 1 and fills *out (str_* counters and key spans
 * not filled), or 0 after the last.
 */
int ngx_ai_relay_json_array_next(const unsigned char *body,
    const ngx_ai_relay_json_member_t *arr, size_t *pos,
    ngx_ai_relay_json_member_t *out);

/* value getters: m may be NULL (GET_MISSING) */
int ngx_ai_relay_json_member_string(const unsigned char *body,
    const ngx_ai_relay_json_member_t *m, unsigned char *buf, size_t size,
    size_t *len);
int ngx_ai_relay_json_member_int(const unsigned char *body,
    const ngx_ai_relay_json_member_t *m, int64_t *value);
int ngx_ai_relay_json_member_bool(const ngx_ai_relay_json_member_t *m,
    int *value);

int ngx_ai_relay_json_get_string(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    unsigned char *buf, size_t size, size_t *len);
int ngx_ai_relay_json_get_int(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    int64_t *value);
int ngx_ai_relay_json_get_bool(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    int *value);

/* e.g. generationConfig.maxOutputTokens */
int ngx_ai_relay_json_get_nested_int(const ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *outer, size_t outer_len,
    const char *inner, size_t inner_len, int64_t *value);

/* decode validated string content (between the quotes) into dst */
int ngx_ai_relay_json_unescape(const unsigned char *src, size_t len,
    unsigned char *dst, size_t size, size_t *out_len);

/*
 * The same for the beginning of a string that may not fit: decodes into
 * dst as much as fits, never part of an escape (a raw UTF-8 sequence may
 * be cut), and returns the number of bytes of src consumed (len if all
 * of it); stops early at an invalid escape.
 */
size_t ngx_ai_relay_json_unescape_prefix(const unsigned char *src,
    size_t len, unsigned char *dst, size_t size, size_t *out_len);

/*
 * "8" or "7.5": digits, maybe a fraction, rounded up to a whole (a length
 * in seconds); more than 2^31 - 1 is 2^31.  -> 0, or -1 if it is not
 * such a number (empty, a sign, an exponent)
 */
#define NGX_AI_RELAY_JSON_WHOLE_MAX  2147483648LL

int ngx_ai_relay_json_whole(const unsigned char *p, size_t len,
    int64_t *value);

/* JSON string literal with quotes; src is copied as is if >= 0x80 */
size_t ngx_ai_relay_json_quote_len(const unsigned char *src, size_t len);
unsigned char *ngx_ai_relay_json_quote(unsigned char *dst,
    const unsigned char *src, size_t len);

int ngx_ai_relay_json_utf8_valid(const unsigned char *p, size_t len);

/*
 * Edit helpers.  Edits made from one scan must be spliced together, in
 * the order they were made: two members appended to an empty object rely
 * on it for their separating comma.
 *
 * edit_member: replace the value of top-level member name by the raw JSON
 * value (not copied: edit->data = value), or, when there is no such
 * member, append ,"name":value to the object, built in scratch (size it
 * with edit_member_size()).  Returns 0, or -1 if scratch is too small.
 */
size_t ngx_ai_relay_json_edit_member_size(const char *name, size_t name_len,
    size_t value_len);
int ngx_ai_relay_json_edit_member(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, const char *name, size_t name_len,
    const unsigned char *value, size_t value_len, unsigned char *scratch,
    size_t scratch_size, ngx_ai_relay_json_edit_t *edit);

/*
 * Make "stream_options":{"include_usage":true} hold.  Returns
 * ngx_ai_relay_json_usage_e; *edit is set for ADD_* and SET_* (edit data
 * are static strings).
 */
int ngx_ai_relay_json_edit_include_usage(ngx_ai_relay_json_scan_t *scan,
    const unsigned char *body, ngx_ai_relay_json_edit_t *edit);

/*
 * Apply edits to body as a list of pieces pointing into body and into the
 * edits' data (zero-length pieces are left out).  Edits are sorted in place
 * by offset (stable; at one offset insertions go before a replacement) and
 * must not overlap.  2 * nedits + 1 pieces always suffice.  Returns 0, or
 * -1 for overlapping or out-of-range edits or too few pieces.
 */
int ngx_ai_relay_json_splice(const unsigned char *body, size_t len,
    ngx_ai_relay_json_edit_t *edits, size_t nedits,
    ngx_ai_relay_json_piece_t *pieces, size_t max_pieces, size_t *npieces,
    size_t *out_len);
unsigned char *ngx_ai_relay_json_pieces_copy(unsigned char *dst,
    const ngx_ai_relay_json_piece_t *pieces, size_t npieces);


/*
 * Lenient walking, for responses read on the hot path (token usage in
 * every body and SSE event), where a document may be cut short, invalid
 * or huge and only a few keys matter.  Nothing is allocated or decoded;
 * no byte outside [p, end) is read.  String contents are never checked:
 * a backslash escapes the byte after it, whatever it is, and keys are
 * compared as written (a key spelled with \u escapes is another key).
 *
 * ngx_ai_relay_json_walk_keys() finds every key in a text that need not
 * be valid JSON: a string (outside other strings) followed by optional
 * whitespace and ':'.  For each, with whitespace after the ':' skipped,
 * it calls handler(walk, key, key_len, value): value < end is the first
 * byte of the value and walk->depth the number of '{' and '[' minus '}'
 * and ']' seen outside strings before the key (1 for a member of the
 * top-level object; negative on stray closing brackets).  The handler
 * returns where the walk goes on: value, the byte after a value it has
 * consumed whole (a string, or a balanced container: brackets skipped
 * are not counted), or NULL to stop.  The walk also stops at an
 * unterminated string and at a key that ends the text.
 *
 * Text measurement without the handler: when count is set (a list of
 * keys ended by one with data NULL), the string value of a key in it is
 * measured as by ngx_ai_relay_json_string_count() into counts[] (not
 * reset by the walk) and the walk goes on after it.
 *
 * A filter saves the call for keys the handler ignores (returns value
 * for): with filter set (five words), only keys that pass it reach the
 * handler or the count list (the handler must not change filter or
 * count during the walk).  A key of length n passes if 0 < n < 64, bit n
 * of filter[4] is set, and the bit of its hash (of its first and last
 * bytes and its length) is set in filter[0..3].
 * ngx_ai_relay_json_key_bit(w, first, last, len) is the bit of such a key
 * in filter[w], a constant for constant arguments:
 *
 *     #define KEYS(w)  (ngx_ai_relay_json_key_bit(w, 'u', 'e', 5)   usage
 *                       | ngx_ai_relay_json_key_bit(w, 'e', 'r', 5))  error
 *
 *     static const uint64_t  filter[5] = {
 *         KEYS(0), KEYS(1), KEYS(2), KEYS(3), KEYS(4)
 *     };
 *
 * ngx_ai_relay_json_key_filtered() says whether a key passes.
 */

#define ngx_ai_relay_json_key_hash(first, last, len)                         \
    (((first) * 4 + (last) * 5 + (len) * 9) & 255)

#define ngx_ai_relay_json_key_bit(w, first, last, len)                       \
    ((w) == 4 ? (uint64_t) 1 << (len)                                        \
     : (ngx_ai_relay_json_key_hash(first, last, len) >> 6) == (w)            \
     ? (uint64_t) 1 << (ngx_ai_relay_json_key_hash(first, last, len) & 63)   \
     : 0)

typedef struct ngx_ai_relay_json_walk_s  ngx_ai_relay_json_walk_t;

typedef const unsigned char *(*ngx_ai_relay_json_key_pt)(
    ngx_ai_relay_json_walk_t *walk, const unsigned char *key,
    size_t key_len, const unsigned char *value);

typedef struct {
    const unsigned char         *data;
    size_t                       len;
} ngx_ai_relay_json_span_t;


struct ngx_ai_relay_json_walk_s {
    ngx_ai_relay_json_key_pt     handler;
    void                        *data;
    const ngx_ai_relay_json_span_t  *count;
    uint64_t                     counts[3];
    const uint64_t              *filter;     /* 5 words; NULL: any key */
    const unsigned char         *end;        /* set by walk_keys() */
    int                          depth;
};

void ngx_ai_relay_json_walk_keys(ngx_ai_relay_json_walk_t *walk,
    const unsigned char *p, size_t len);
int ngx_ai_relay_json_key_filtered(const uint64_t *filter,
    const unsigned char *key, size_t len);


/*
 * ngx_ai_relay_json_walk_value() checks the structure of the one value at
 * p as RFC 8259 does (punctuation, literals, strict number syntax, no
 * trailing commas), but not string contents (see above), and allows at
 * most max_depth containers, the value at p being the first (max_depth
 * is capped at NGX_AI_RELAY_JSON_LAX_DEPTH: the walk recurses).  It
 * returns the byte after the value, or NULL if the value is invalid, too
 * deep or cut short; whatever follows the value is not looked at.
 *
 * With a handler, it reports every member of an object and every element
 * of an array nested at most report_depth containers deep (1: those of
 * the value at p itself; capped at NGX_AI_RELAY_JSON_PATH_MAX) once its
 * value is walked: handler(lax, key, key_len, value, value_end), key NULL
 * for an array element, lax->depth the depth of its container, and
 * lax->path[i] (i < depth - 1) the key (data NULL: an element) by which
 * each enclosing container was reached from the value at p.  Members of
 * a container are reported before the member that holds it; a value
 * found invalid later does not undo the reports already made.
 */

#define NGX_AI_RELAY_JSON_LAX_DEPTH  256
#define NGX_AI_RELAY_JSON_PATH_MAX   8


typedef struct ngx_ai_relay_json_lax_s  ngx_ai_relay_json_lax_t;

typedef void (*ngx_ai_relay_json_member_pt)(ngx_ai_relay_json_lax_t *lax,
    const unsigned char *key, size_t key_len, const unsigned char *value,
    const unsigned char *value_end);

struct ngx_ai_relay_json_lax_s {
    ngx_ai_relay_json_member_pt  handler;    /* NULL: only walk */
    void                        *data;
    unsigned                     max_depth;
    unsigned                     report_depth;

    unsigned                     depth;
    ngx_ai_relay_json_span_t     path[NGX_AI_RELAY_JSON_PATH_MAX];
};

const unsigned char *ngx_ai_relay_json_walk_value(
    ngx_ai_relay_json_lax_t *lax, const unsigned char *p,
    const unsigned char *end);

/* p is after an opening quote: its closing quote, or NULL */
const unsigned char *ngx_ai_relay_json_string_end(const unsigned char *p,
    const unsigned char *end);

/*
 * p is after the opening quote of a string: adds its code points, as
 * decoded, to counts[0] (below U+0080), counts[1] (U+0080 to U+07FF) and
 * counts[2] (U+0800 and above) and returns the byte after the closing
 * quote, or end if there is none.  Lenient, for text estimates: a raw
 * byte 0xc0 to 0xdf counts in [1], 0xe0 and above in [2], 0x80 to 0xbf
 * (continuations) in none; an escaped surrogate pair counts once in [2]
 * (a lone \uDC00-\uDFFF escape in none); a backslash starting an invalid
 * \u escape counts as one ASCII character and the bytes after it as text.
 */
const unsigned char *ngx_ai_relay_json_string_count(const unsigned char *p,
    const unsigned char *end, uint64_t *counts);

/*
 * A count written as a JSON number at p (strict syntax).  Returns the
 * byte after the number, or NULL if there is none.  *value is the number
 * if it is an integer in [0, max], or a real whose value, rounded by
 * strtod(), is in [0, max] (then truncated toward zero), else -1: any
 * number with a minus sign (-0 too), and a real written with 64 bytes or
 * more.  max must be below 2^53.
 */
const unsigned char *ngx_ai_relay_json_number_count(const unsigned char *p,
    const unsigned char *end, int64_t max, int64_t *value);


#endif /* _NGX_AI_RELAY_JSON_SCAN_H_INCLUDED_ */

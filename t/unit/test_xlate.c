
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * cmocka tests of format translation (src/ngx_ai_relay_xlate.c,
 * src/ngx_ai_relay_xlate_sse.c).  Requests are translated from bodies
 * scanned as the module scans them and compared byte for byte with what
 * the upstream must get; refusals say why.  Recorded-style streams of
 * t/unit/fixtures are fed through the SSE parser whole, split at every
 * byte and one byte at a time, and must give the same events, equal to
 * t/unit/fixtures/xlate/<fixture>.out (XLATE_WRITE=1 writes those files
 * instead, and the run fails whatever it found: read them, then run
 * again without it).
 */


#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_ai_relay_sse.h"
#include "ngx_ai_relay_xlate.h"


#define T_ALLOCS  4096


typedef struct {
    void    *p[T_ALLOCS];
    size_t   n;
} t_arena_t;


static void *
t_alloc(void *data, size_t size)
{
    t_arena_t  *a;

    a = data;

    if (a->n == T_ALLOCS) {
        return NULL;
    }

    a->p[a->n] = malloc(size);

    return a->p[a->n++];
}


static void
t_free(t_arena_t *a)
{
    while (a->n) {
        free(a->p[--a->n]);
    }
}


static char *
t_read(const char *name, size_t *len)
{
    char   path[512];
    char  *buf;
    FILE  *f;
    long   n;

    snprintf(path, sizeof(path), "%s/%s", NGX_AI_RELAY_FIXTURES, name);

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);

    *len = n;
    return buf;
}


/* --------------------------------------------------------- requests */

typedef struct {
    int                        rc;
    char                       out[16384];
    char                       err[NGX_AI_RELAY_XLATE_ERR_LEN];
    int                        stream;
    int                        include_usage;
    int64_t                    max_out;
} t_req_result_t;


static int  t_request_stream;


static void
t_request(ngx_ai_relay_format_e from, ngx_ai_relay_format_e to,
    const char *body, t_req_result_t *res)
{
    t_arena_t                    a;
    ngx_ai_relay_json_scan_t     scan;
    ngx_ai_relay_json_member_t   members[64];
    ngx_ai_relay_xlate_req_t     rq;

    memset(&a, 0, sizeof(a));
    memset(res, 0, sizeof(*res));

    ngx_ai_relay_json_scan_init(&scan, members, 64);
    assert_int_equal(ngx_ai_relay_json_scan(&scan, (const u_char *) body,
                                            strlen(body)),
                     NGX_AI_RELAY_JSON_OK);

    memset(&rq, 0, sizeof(rq));
    rq.body = (const u_char *) body;
    rq.len = strlen(body);
    rq.scan = &scan;
    rq.model = (const u_char *) "up-model";
    rq.model_len = 8;
    rq.default_max_tokens = 4096;
    rq.from = from;
    rq.to = to;
    rq.stream = t_request_stream;

    res->rc = ngx_ai_relay_xlate_request(&rq, t_alloc, &a);

    if (res->rc == NGX_AI_RELAY_XLATE_OK) {
        assert_true(rq.out_len < sizeof(res->out));
        memcpy(res->out, rq.out, rq.out_len);
        res->out[rq.out_len] = '\0';
    }

    memcpy(res->err, rq.err, sizeof(res->err));
    res->stream = rq.stream;
    res->include_usage = rq.include_usage;
    res->max_out = rq.max_out;

    t_free(&a);
}


#define O2A  NGX_AI_RELAY_FMT_OPENAI_CHAT, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES
#define A2O  NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, NGX_AI_RELAY_FMT_OPENAI_CHAT
#define O2G  NGX_AI_RELAY_FMT_OPENAI_CHAT, NGX_AI_RELAY_FMT_GEMINI
#define G2O  NGX_AI_RELAY_FMT_GEMINI, NGX_AI_RELAY_FMT_OPENAI_CHAT
#define A2G  NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, NGX_AI_RELAY_FMT_GEMINI
#define G2A  NGX_AI_RELAY_FMT_GEMINI, NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES


static void
test_o2a_request(void **state)
{
    t_req_result_t  r;

    t_request(O2A,
        "{\"model\":\"claude\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
        "\"text\":\"No \\\"quotes\\\".\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"What is here?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://e.x/a.png\"}},{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Let me look.\","
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
        "\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"max_completion_tokens\":300,\"temperature\":0.5,\"top_p\":1,"
        "\"stop\":\"END\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"user\":\"u-1\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"weather\",\"description\":\"Weather of a city\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\"}}}}}],\"tool_choice\":\"required\","
        "\"parallel_tool_calls\":false}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"system\":["
        "{\"type\":\"text\",\"text\":\"Be brief.\"},"
        "{\"type\":\"text\",\"text\":\"No \\\"quotes\\\".\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"What is here?\"},{\"type\":\"image\",\"source\":{\"type\":"
        "\"url\",\"url\":\"https://e.x/a.png\"}},{\"type\":\"image\","
        "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
        "\"data\":\"iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Let me look.\"},{\"type\":\"tool_use\",\"id\":\"call_1\","
        "\"name\":\"weather\",\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"call_1\",\"content\":\"sunny\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"max_tokens\":300,\"temperature\":0.5,\"top_p\":1,"
        "\"stop_sequences\":[\"END\"],\"stream\":true,"
        "\"metadata\":{\"user_id\":\"u-1\"},"
        "\"tools\":[{\"name\":\"weather\",\"description\":"
        "\"Weather of a city\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"any\","
        "\"disable_parallel_tool_use\":true}}");
    assert_true(r.stream);
    assert_true(r.include_usage);
}


static void
test_o2a_defaults(void **state)
{
    t_req_result_t  r;

    /* no max_tokens: the default; reasoning_effort: thinking */

    t_request(O2A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"reasoning_effort\":\"medium\","
              "\"tool_choice\":{\"type\":\"function\",\"function\":"
              "{\"name\":\"f\"}}}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}],\"max_tokens\":8192,\"thinking\":"
        "{\"type\":\"enabled\",\"budget_tokens\":4096},"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}");
    assert_false(r.stream);

    t_request(O2A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"stream\":true,\"n\":1,"
              "\"frequency_penalty\":0,\"max_tokens\":5}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}],\"max_tokens\":5,\"stream\":true}");
    assert_true(r.stream);
    assert_false(r.include_usage);
}


static void
test_o2a_refused(void **state)
{
    size_t           i;
    t_req_result_t   r;
    static const struct {
        const char  *body;
        const char  *err;
    } cases[] = {
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"n\":2}", "n other than 1" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"logprobs\":true}", "logprobs" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"audio\":{}}", "the parameter audio" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"response_format\":{\"type\":\"json_object\"}}",
          "response_format" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"},{\"role\":\"system\",\"content\":\"x\"}]}",
          "system messages after" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"input_audio\",\"input_audio\":{}}]}]}",
          "input_audio" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"image_url\",\"image_url\":{\"url\":"
          "\"data:image/png,abc\"}}]}]}", "base64" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\","
          "\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\","
          "\"arguments\":\"[1]\"}}]}]}", "JSON object" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"reasoning_effort\":\"high\",\"max_tokens\":100}",
          "thinking budget" },
        { "{\"model\":\"c\",\"messages\":[]}", "at least one" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"tools\":[{\"type\":\"web_search\"}]}",
          "only function tools" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_request(O2A, cases[i].body, &r);

        if (r.rc != NGX_AI_RELAY_XLATE_INVALID
            || strstr(r.err, cases[i].err) == NULL)
        {
            fail_msg("case %zu: rc %d, \"%s\"", i, r.rc, r.err);
        }
    }
}


static void
test_a2o_request(void **state)
{
    t_req_result_t  r;

    t_request(A2O,
        "{\"model\":\"gpt\",\"max_tokens\":1024,\"system\":[{\"type\":"
        "\"text\",\"text\":\"You are Claude Code.\",\"cache_control\":"
        "{\"type\":\"ephemeral\"}}],\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Look\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/jpeg\",\"data\":\"/9j/4AAQ\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
        "\"thinking\":\"hmm\",\"signature\":\"s\"},{\"type\":\"text\","
        "\"text\":\"Reading \"},{\"type\":\"text\",\"text\":\"it.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Read\","
        "\"input\":{\"path\":\"/a\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\","
        "\"text\":\"file body\"}]},{\"type\":\"text\",\"text\":\"go on\"}]}"
        "],\"stop_sequences\":[\"###\"],\"temperature\":1,\"stream\":true,"
        "\"metadata\":{\"user_id\":\"u-2\"},\"tools\":[{\"name\":\"Read\","
        "\"description\":\"Read a file\",\"input_schema\":{\"type\":"
        "\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"auto\","
        "\"disable_parallel_tool_use\":true},\"thinking\":{\"type\":"
        "\"enabled\",\"budget_tokens\":5000}}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":["
        "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"You are Claude Code.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Look\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/jpeg;base64,/9j/4AAQ\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Reading it.\","
        "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"Read\",\"arguments\":"
        "\"{\\\"path\\\":\\\"/a\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"file body\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"go on\"}]}],"
        "\"max_completion_tokens\":1024,\"temperature\":1,\"stop\":[\"###\"],"
        "\"reasoning_effort\":\"medium\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"user\":\"u-2\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"Read\","
        "\"description\":\"Read a file\",\"parameters\":{\"type\":"
        "\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false}");
    assert_true(r.stream);
}


static void
test_a2o_refused(void **state)
{
    size_t           i;
    t_req_result_t   r;
    static const struct {
        const char  *body;
        const char  *err;
    } cases[] = {
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}]}", "max_tokens" },
        { "{\"model\":\"c\",\"max_tokens\":5,\"top_k\":3,\"messages\":"
          "[{\"role\":\"user\",\"content\":\"hi\"}]}", "top_k" },
        { "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":"
          "\"user\",\"content\":[{\"type\":\"document\",\"source\":{}}]}]}",
          "document" },
        { "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":"
          "\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
          "\"web_search_20250305\",\"name\":\"web_search\"}]}",
          "only custom tools" },
        { "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":"
          "\"user\",\"content\":\"hi\"}],\"container\":\"x\"}",
          "the parameter container" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_request(A2O, cases[i].body, &r);

        if (r.rc != NGX_AI_RELAY_XLATE_INVALID
            || strstr(r.err, cases[i].err) == NULL)
        {
            fail_msg("case %zu: rc %d, \"%s\"", i, r.rc, r.err);
        }
    }
}


static void
test_o2g_request(void **state)
{
    t_req_result_t  r;

    t_request(O2G,
        "{\"model\":\"gem\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"What is here?\"},{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
        "\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"max_tokens\":300,\"temperature\":0.5,\"top_p\":1,"
        "\"stop\":[\"END\"],\"stream\":true,\"seed\":7,"
        "\"response_format\":{\"type\":\"json_object\"},"
        "\"reasoning_effort\":\"low\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"weather\",\"description\":\"Weather of a city\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\"}}}}}],\"tool_choice\":{\"type\":\"function\","
        "\"function\":{\"name\":\"weather\"}}}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
        "\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"What is here?\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":"
        "\"iVBORw0KGgo=\"}}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
        "\"weather\",\"args\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"weather\",\"response\":{\"content\":\"sunny\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Thanks\"}]}],"
        "\"generationConfig\":{\"maxOutputTokens\":300,\"temperature\":0.5,"
        "\"topP\":1,\"seed\":7,\"stopSequences\":[\"END\"],"
        "\"responseMimeType\":\"application/json\",\"thinkingConfig\":"
        "{\"thinkingBudget\":1024,\"includeThoughts\":true}},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"weather\","
        "\"description\":\"Weather of a city\",\"parametersJsonSchema\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\"}}}}]}],"
        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
        "\"allowedFunctionNames\":[\"weather\"]}}}");
    assert_true(r.stream);
    assert_false(r.include_usage);
}


static void
test_o2g_refused(void **state)
{
    size_t           i;
    t_req_result_t   r;
    static const struct {
        const char  *body;
        const char  *err;
    } cases[] = {
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "[{\"type\":\"image_url\",\"image_url\":{\"url\":"
          "\"https://e.x/a.png\"}}]}]}", "data: URLs" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"tool\","
          "\"tool_call_id\":\"nope\",\"content\":\"x\"}]}",
          "earlier assistant tool call" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"response_format\":{\"type\":\"json_schema\"}}",
          "json_schema" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"parallel_tool_calls\":false}", "parallel_tool_calls" },
        { "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":"
          "\"hi\"}],\"logit_bias\":{\"1\":2}}", "the parameter logit_bias" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_request(O2G, cases[i].body, &r);

        if (r.rc != NGX_AI_RELAY_XLATE_INVALID
            || strstr(r.err, cases[i].err) == NULL)
        {
            fail_msg("case %zu: rc %d, \"%s\"", i, r.rc, r.err);
        }
    }
}


static void
test_g2o_request(void **state)
{
    t_req_result_t  r;

    t_request(G2O,
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be \"},"
        "{\"text\":\"brief.\"}]},\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"What is here?\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":"
        "\"iVBORw0KGgo=\"}}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"hmm\",\"thought\":"
        "true},{\"text\":\"Let me look.\"},{\"functionCall\":{\"name\":"
        "\"weather\",\"args\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"weather\",\"response\":{\"sky\":\"sunny\"}}},{\"text\":"
        "\"Thanks\"}]}],"
        "\"generationConfig\":{\"maxOutputTokens\":300,\"temperature\":0.5,"
        "\"stopSequences\":[\"END\"],\"responseMimeType\":"
        "\"application/json\",\"thinkingConfig\":{\"thinkingBudget\":"
        "8000}},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"weather\","
        "\"description\":\"Weather\",\"parameters\":{\"type\":"
        "\"OBJECT\"}}]}],\"toolConfig\":{\"functionCallingConfig\":"
        "{\"mode\":\"ANY\"}},\"safetySettings\":[]}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"What is here?\"},{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Let me look.\","
        "\"tool_calls\":[{\"id\":\"call_0_weather\",\"type\":"
        "\"function\",\"function\":{\"name\":\"weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0_weather\","
        "\"content\":\"{\\\"sky\\\":\\\"sunny\\\"}\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Thanks\"}]}],"
        "\"max_completion_tokens\":300,\"temperature\":0.5,\"stop\":[\"END\"],"
        "\"response_format\":{\"type\":\"json_object\"},"
        "\"reasoning_effort\":\"medium\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"weather\",\"description\":\"Weather\",\"parameters\":"
        "{\"type\":\"OBJECT\"}}}],\"tool_choice\":\"required\"}");
    assert_false(r.stream);

    /* the stream is said in the path: the caller says it */

    t_request_stream = 1;
    t_request(G2O, "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
              &r);
    t_request_stream = 0;

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    assert_true(r.stream);

    t_request(G2O, "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}],"
              "\"generationConfig\":{\"topK\":3}}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "generationConfig.topK"));

    t_request(G2O, "{\"contents\":[{\"parts\":[{\"fileData\":{}}]}]}",
              &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);

    t_request(G2O, "{\"contents\":[],\"cachedContent\":\"c/1\"}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "cachedContent"));
}


/* Anthropic <-> Gemini: by way of OpenAI's format */

static void
test_chained_requests(void **state)
{
    t_req_result_t  r;

    t_request(A2G,
        "{\"model\":\"g\",\"max_tokens\":100,\"system\":\"Be brief.\","
        "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
        "\"Weather?\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"weather\",\"input\":"
        "{\"city\":\"Paris\"}}]},{\"role\":\"user\",\"content\":[{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":"
        "\"sunny\"}]}],\"tools\":[{\"name\":\"weather\",\"input_schema\":"
        "{\"type\":\"object\"}}]}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
        "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
        "\"Weather?\"}]},{\"role\":\"model\",\"parts\":[{\"functionCall\":"
        "{\"name\":\"weather\",\"args\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"weather\",\"response\":{\"content\":\"sunny\"}}}]}],"
        "\"generationConfig\":{\"maxOutputTokens\":100},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"weather\","
        "\"parametersJsonSchema\":{\"type\":\"object\"}}]}]}");
    assert_true(r.stream);

    t_request_stream = 1;
    t_request(G2A, "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}],"
              "\"generationConfig\":{\"maxOutputTokens\":64}}", &r);
    t_request_stream = 0;

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"model\":\"up-model\",\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
        "\"max_tokens\":64,\"stream\":true}");
    assert_true(r.stream);

    /* refused by either step */

    t_request(A2G, "{\"model\":\"g\",\"max_tokens\":5,\"top_k\":2,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);

    t_request(A2G, "{\"model\":\"g\",\"max_tokens\":5,\"messages\":["
              "{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":"
              "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}}",
              &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "parallel_tool_calls"));
}


/*
 * A functionResponse without an id answers its name's call in the model
 * turn before it: the id that call got (Gemini's own, or call_<k>_<name>
 * of its rank), whatever order the responses come in.
 */

static void
test_g2o_response_ids(void **state)
{
    t_req_result_t  r;

    t_request(G2O, "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Weather?\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"id\":"
        "\"toolu_1\",\"name\":\"get_weather\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"get_weather\",\"response\":{\"t\":20}}}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out, "\"tool_calls\":[{\"id\":\"toolu_1\""));
    assert_non_null(strstr(r.out, "{\"role\":\"tool\",\"tool_call_id\":"
                                  "\"toolu_1\""));

    /* two calls without ids, answered in the other order */

    t_request(G2O, "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Both?\"}]},"
        "{\"role\":\"model\",\"parts\":["
        "{\"functionCall\":{\"name\":\"a\",\"args\":{}}},"
        "{\"functionCall\":{\"name\":\"b\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":["
        "{\"functionResponse\":{\"name\":\"b\",\"response\":{}}},"
        "{\"functionResponse\":{\"name\":\"a\",\"response\":{}}}]}]}",
        &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out, "{\"id\":\"call_0_a\""));
    assert_non_null(strstr(r.out, "{\"id\":\"call_1_b\""));
    assert_non_null(strstr(r.out, "{\"role\":\"tool\",\"tool_call_id\":"
                                  "\"call_1_b\",\"content\":\"{}\"},"
                                  "{\"role\":\"tool\",\"tool_call_id\":"
                                  "\"call_0_a\""));
}


/*
 * No empty text block reaches Anthropic or Gemini (both refuse one), and
 * Anthropic's sampling ranges are checked: temperature 0-1, and with
 * thinking neither another temperature than 1 nor top_p below 0.95.
 */

static void
test_empty_and_ranges(void **state)
{
    t_req_result_t  r;

    t_request(O2A, "{\"model\":\"c\",\"max_tokens\":5,\"messages\":["
              "{\"role\":\"user\",\"content\":\"a\"},"
              "{\"role\":\"assistant\",\"content\":\"\"},"
              "{\"role\":\"user\",\"content\":\"b\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_null(strstr(r.out, "\"text\":\"\""));
    assert_null(strstr(r.out, "assistant"));

    t_request(O2G, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\","
              "\"content\":[{\"type\":\"text\",\"text\":\"\"},{\"type\":"
              "\"text\",\"text\":\"hi\"}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_null(strstr(r.out, "{\"text\":\"\"}"));
    assert_non_null(strstr(r.out, "\"parts\":[{\"text\":\"hi\"}]"));

    t_request(O2A, "{\"model\":\"c\",\"max_tokens\":5,\"temperature\":1.5,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "temperature must be between 0 and 1"));

    t_request(O2A, "{\"model\":\"c\",\"temperature\":0.5,"
              "\"reasoning_effort\":\"low\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "temperature cannot be set"));

    t_request(O2A, "{\"model\":\"c\",\"top_p\":0.5,"
              "\"reasoning_effort\":\"low\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);
    assert_non_null(strstr(r.err, "top_p must be at least 0.95"));

    t_request(O2A, "{\"model\":\"c\",\"temperature\":1,\"top_p\":0.95,"
              "\"reasoning_effort\":\"low\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
}


/*
 * The output tokens a translation allows (what the relay reserves): the
 * max_tokens it wrote, thinking budget included, whichever of the
 * client's fields it read; Gemini always gets maxOutputTokens.
 */

static void
test_max_out(void **state)
{
    t_req_result_t  r;

    /* both fields: the translation sends max_completion_tokens */

    t_request(O2A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"max_tokens\":16,"
              "\"max_completion_tokens\":32000}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out, "\"max_tokens\":32000"));
    assert_int_equal(r.max_out, 32000);

    /* no max: the default plus the thinking budget */

    t_request(O2A, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"reasoning_effort\":\"high\"}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(r.max_out, 4096 + NGX_AI_RELAY_XLATE_BUDGET_HIGH);

    t_request(O2G, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"reasoning_effort\":\"high\"}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_string_equal(r.out,
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
        "\"generationConfig\":{\"maxOutputTokens\":20480,"
        "\"thinkingConfig\":{\"thinkingBudget\":16384,"
        "\"includeThoughts\":true}}}");
    assert_int_equal(r.max_out, 4096 + NGX_AI_RELAY_XLATE_BUDGET_HIGH);

    t_request(O2G, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out, "{\"maxOutputTokens\":4096}"));
    assert_int_equal(r.max_out, 4096);

    t_request(O2G, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"max_tokens\":16,"
              "\"max_completion_tokens\":300}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out, "{\"maxOutputTokens\":300}"));
    assert_int_equal(r.max_out, 300);

    t_request(O2G, "{\"model\":\"g\",\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}],\"max_tokens\":0}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_INVALID);

    t_request(G2O, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
              "\"hi\"}]}],\"generationConfig\":{\"maxOutputTokens\":64}}",
              &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(r.max_out, 64);

    t_request(G2O, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
              "\"hi\"}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(r.max_out, -1);

    /* Anthropic -> Gemini by way of OpenAI: the last step's */

    t_request(A2G, "{\"model\":\"g\",\"max_tokens\":77,\"messages\":["
              "{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(r.max_out, 77);

    t_request(G2A, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
              "\"hi\"}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(r.max_out, 4096);
}


/* ----------------------------------------------------- whole answers */

static void
t_golden(const char *name, const u_char *out, size_t len)
{
    char    path[512];
    char   *want;
    FILE   *f;
    size_t  wlen;

    snprintf(path, sizeof(path), "xlate/%s.out", name);

    if (getenv("XLATE_WRITE")) {
        snprintf(path, sizeof(path), "%s/xlate/%s.out",
                 NGX_AI_RELAY_FIXTURES, name);
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(out, 1, len, f), len);
        fclose(f);
        return;
    }

    want = t_read(path, &wlen);

    if (want == NULL) {
        fail_msg("no %s", path);
    }

    if (wlen != len || memcmp(want, out, len) != 0) {
        fail_msg("%s differs:\n%.*s", path, (int) len, (const char *) out);
    }

    free(want);
}


static void
t_response_as(const char *fixture, ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, const char *golden)
{
    char               *body;
    size_t              len;
    t_arena_t           a;
    ngx_ai_relay_jw_t   w;

    memset(&a, 0, sizeof(a));

    body = t_read(fixture, &len);
    assert_non_null(body);

    ngx_ai_relay_jw_init(&w, t_alloc, &a);
    assert_int_equal(ngx_ai_relay_xlate_response(from, to,
                                                 (const u_char *) body, len,
                                                 1700000000, &w),
                     NGX_AI_RELAY_XLATE_OK);

    t_golden(golden, w.buf, w.len);

    free(body);
    t_free(&a);
}


static void
t_response(const char *fixture, ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to)
{
    t_response_as(fixture, from, to, fixture);
}


static void
test_responses(void **state)
{
    t_response("anthropic.json", A2O);
    t_response("anthropic_tools.json", A2O);
    t_response("openai_chat.json", O2A);
    t_response("openai_chat_tools.json", O2A);
    t_response("gemini.json", G2O);
    t_response("gemini_tools.json", G2O);
    t_response_as("openai_chat.json", O2G, "openai_chat.json.gemini");
    t_response_as("openai_chat_tools.json", O2G,
                  "openai_chat_tools.json.gemini");
    t_response_as("anthropic_tools.json", A2G,
                  "anthropic_tools.json.gemini");
    t_response_as("gemini_tools.json", G2A, "gemini_tools.json.anthropic");
}


static void
test_errors(void **state)
{
    t_arena_t          a;
    ngx_ai_relay_jw_t  w;
    const char        *e1 = "{\"type\":\"error\",\"error\":{\"type\":"
                            "\"overloaded_error\",\"message\":"
                            "\"Overloaded\"}}";
    const char        *e2 = "{\"error\":{\"message\":\"Slow down\","
                            "\"type\":\"requests\",\"code\":"
                            "\"rate_limit_exceeded\"}}";

    memset(&a, 0, sizeof(a));

    ngx_ai_relay_jw_init(&w, t_alloc, &a);
    ngx_ai_relay_xlate_error(NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES,
        NGX_AI_RELAY_FMT_OPENAI_CHAT, 529,
        (const u_char *) e1, strlen(e1), &w);
    assert_int_equal(w.len, strlen("{\"error\":{\"type\":\"overloaded_error\","
                     "\"param\":null,\"code\":null,\"message\":"
                     "\"Overloaded\"}}"));
    assert_memory_equal(w.buf, "{\"error\":{\"type\":\"overloaded_error\","
                        "\"param\":null,\"code\":null,\"message\":"
                        "\"Overloaded\"}}", w.len);

    ngx_ai_relay_jw_init(&w, t_alloc, &a);
    ngx_ai_relay_xlate_error(NGX_AI_RELAY_FMT_OPENAI_CHAT,
        NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, 429,
        (const u_char *) e2, strlen(e2), &w);
    assert_int_equal(w.len, strlen("{\"type\":\"error\",\"error\":{\"type\":"
                     "\"rate_limit_error\",\"message\":\"Slow down\"}}"));
    assert_memory_equal(w.buf, "{\"type\":\"error\",\"error\":{\"type\":"
                        "\"rate_limit_error\",\"message\":\"Slow down\"}}",
                        w.len);

    /* not JSON: a message of ours */

    ngx_ai_relay_jw_init(&w, t_alloc, &a);
    ngx_ai_relay_xlate_error(NGX_AI_RELAY_FMT_OPENAI_CHAT,
        NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES, 502,
        (const u_char *) "<html>", 6, &w);
    assert_non_null(memmem(w.buf, w.len, "\"api_error\"", 11));
    assert_non_null(memmem(w.buf, w.len, "The upstream answered", 21));

    t_free(&a);
}


/* ----------------------------------------------------------- streams */

typedef struct {
    ngx_ai_relay_sse_t        sse;
    ngx_ai_relay_xlate_sse_t  x;
    u_char                   *out;
    size_t                    len;
    size_t                    cap;
} t_stream_t;


static void
t_take(t_stream_t *s)
{
    if (s->x.out.len == 0) {
        return;
    }

    if (s->len + s->x.out.len > s->cap) {
        s->cap = (s->len + s->x.out.len) * 2 + 1024;
        s->out = realloc(s->out, s->cap);
        assert_non_null(s->out);
    }

    memcpy(s->out + s->len, s->x.out.buf, s->x.out.len);
    s->len += s->x.out.len;
    s->x.out.len = 0;
}


static void
t_feed(t_stream_t *s, const u_char *p, size_t len)
{
    size_t  n;

    while (len) {
        n = ngx_ai_relay_sse_feed(&s->sse, p, len);
        p += n;
        len -= n;

        if (s->sse.event_ready) {
            assert_int_equal(ngx_ai_relay_xlate_sse_event(&s->x,
                                 s->sse.event_name, s->sse.event_name_len,
                                 s->sse.data, s->sse.data_len),
                             NGX_AI_RELAY_XLATE_OK);

            /* every event gives complete events only */
            if (s->x.out.len) {
                assert_true(s->x.out.len >= 2);
                assert_memory_equal(s->x.out.buf + s->x.out.len - 2,
                                    "\n\n", 2);
            }

            t_take(s);
        }
    }
}


static void t_stream_src(const char *src, size_t len,
    ngx_ai_relay_format_e from, ngx_ai_relay_format_e to, int include_usage,
    size_t cut, size_t step, t_stream_t *s, t_arena_t *a);


static void
t_stream_run(const char *fixture, ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, int include_usage, size_t cut, size_t step,
    t_stream_t *s, t_arena_t *a)
{
    char    *src;
    size_t   len;

    src = t_read(fixture, &len);
    assert_non_null(src);

    t_stream_src(src, len, from, to, include_usage, cut, step, s, a);

    free(src);
}


static void
t_stream_src(const char *src, size_t len, ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, int include_usage, size_t cut, size_t step,
    t_stream_t *s, t_arena_t *a)
{
    size_t  i;

    memset(s, 0, sizeof(*s));
    ngx_ai_relay_sse_init(&s->sse, t_alloc, a, 0);
    ngx_ai_relay_xlate_sse_init(&s->x, from, to, t_alloc, a);
    s->x.created = 1700000000;
    s->x.include_usage = include_usage;

    if (step) {
        for (i = 0; i < len; i += step) {
            t_feed(s, (u_char *) src + i, len - i < step ? len - i : step);
        }

    } else {
        t_feed(s, (u_char *) src, cut);
        t_feed(s, (u_char *) src + cut, len - cut);
    }

    if (ngx_ai_relay_sse_finish(&s->sse)) {
        assert_int_equal(ngx_ai_relay_xlate_sse_event(&s->x,
                             s->sse.event_name, s->sse.event_name_len,
                             s->sse.data, s->sse.data_len),
                         NGX_AI_RELAY_XLATE_OK);
    }

    assert_int_equal(ngx_ai_relay_xlate_sse_finish(&s->x),
                     NGX_AI_RELAY_XLATE_OK);
    t_take(s);
}


static void
t_stream(const char *fixture, ngx_ai_relay_format_e from,
    ngx_ai_relay_format_e to, int include_usage, const char *golden)
{
    char        *src;
    size_t       len, cut;
    t_arena_t    a;
    t_stream_t   whole, part;

    memset(&a, 0, sizeof(a));

    t_stream_run(fixture, from, to, include_usage, 0, 0, &whole, &a);
    t_golden(golden, whole.out, whole.len);

    src = t_read(fixture, &len);
    assert_non_null(src);
    free(src);

    for (cut = 1; cut < len; cut += 7) {
        t_stream_run(fixture, from, to, include_usage, cut, 0, &part, &a);
        assert_int_equal(part.len, whole.len);
        assert_memory_equal(part.out, whole.out, whole.len);
        free(part.out);
        t_free(&a);
    }

    t_stream_run(fixture, from, to, include_usage, 0, 1, &part, &a);
    assert_int_equal(part.len, whole.len);
    assert_memory_equal(part.out, whole.out, whole.len);
    free(part.out);

    free(whole.out);
    t_free(&a);
}


static void
test_streams(void **state)
{
    t_stream("anthropic_stream.sse", A2O, 1, "anthropic_stream.sse");
    t_stream("anthropic_stream_tools.sse", A2O, 0,
             "anthropic_stream_tools.sse");
    t_stream("anthropic_stream_error.sse", A2O, 1,
             "anthropic_stream_error.sse");
    t_stream("openai_chat_stream_usage.sse", O2A, 0,
             "openai_chat_stream_usage.sse");
    t_stream("openai_chat_stream_tools.sse", O2A, 0,
             "openai_chat_stream_tools.sse");
    t_stream("gemini_stream.sse", G2O, 1, "gemini_stream.sse");
    t_stream("gemini_stream_tools.sse", G2O, 0, "gemini_stream_tools.sse");
    t_stream("openai_chat_stream_usage.sse", O2G, 0,
             "openai_chat_stream_usage.sse.gemini");
    t_stream("openai_chat_stream_tools.sse", O2G, 0,
             "openai_chat_stream_tools.sse.gemini");
    t_stream("anthropic_stream_tools.sse", A2G, 0,
             "anthropic_stream_tools.sse.gemini");
    t_stream("gemini_stream.sse", G2A, 0, "gemini_stream.sse.anthropic");
}


/*
 * Gemini's thoughtSignature of a function call part rides in the OpenAI
 * tool call id (base64url after NGX_AI_RELAY_XLATE_SIG), in whole answers
 * and streams, and goes back on the functionCall's part when the client
 * sends the call back; calls without one keep today's ids.
 */

#define T_SIG_ANSWER                                                          \
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["         \
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":"               \
    "{\"city\":\"Paris\"}},\"thoughtSignature\":\"Cg4+Ab/z\\/Q==\"},"       \
    "{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}},"             \
    "{\"functionCall\":{\"id\":\"fc9\",\"name\":\"get_day\",\"args\":{}},"  \
    "\"thoughtSignature\":\"QUI=\"},"                                       \
    "{\"functionCall\":{\"name\":\"get_year\",\"args\":{}},"              \
    "\"thoughtSignature\":\"not base64!\"}]},\"finishReason\":\"STOP\"}],"   \
    "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":5,"  \
    "\"totalTokenCount\":15},\"modelVersion\":\"gemini-3-pro-preview\","     \
    "\"responseId\":\"r1\"}"


static void
t_answer(ngx_ai_relay_format_e from, ngx_ai_relay_format_e to,
    const char *body, char *out, size_t size)
{
    t_arena_t           a;
    ngx_ai_relay_jw_t   w;

    memset(&a, 0, sizeof(a));

    ngx_ai_relay_jw_init(&w, t_alloc, &a);
    assert_int_equal(ngx_ai_relay_xlate_response(from, to,
                                                 (const u_char *) body,
                                                 strlen(body), 1700000000,
                                                 &w),
                     NGX_AI_RELAY_XLATE_OK);
    assert_true(w.len < size);
    memcpy(out, w.buf, w.len);
    out[w.len] = '\0';

    t_free(&a);
}


static void
test_thought_signature(void **state)
{
    char            out[4096];
    const char     *src;
    t_arena_t       a;
    t_stream_t      whole, part;
    t_req_result_t  r;

    /* a whole answer */

    t_answer(G2O, T_SIG_ANSWER, out, sizeof(out));
    assert_non_null(strstr(out, "\"tool_calls\":[{\"id\":"
                                "\"call_0_get_weather__tsig_Cg4-Ab_z_Q\","
                                "\"type\":\"function\""));
    assert_non_null(strstr(out, "{\"id\":\"call_1_get_time\","));
    assert_non_null(strstr(out, "{\"id\":\"fc9__tsig_QUI\","));
    assert_non_null(strstr(out, "{\"id\":\"call_3_get_year\","));
    assert_null(strstr(out, "thoughtSignature"));

    /* an Anthropic client gets it in the tool_use id */

    t_answer(G2A, T_SIG_ANSWER, out, sizeof(out));
    assert_non_null(strstr(out, "\"id\":"
                                "\"call_0_get_weather__tsig_Cg4-Ab_z_Q\""));

    /* the calls sent back: the signatures on their parts again */

    t_request(O2G,
        "{\"model\":\"gem\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_0_get_weather__tsig_Cg4-Ab_z_Q\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_1_get_time\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_time\",\"arguments\":\"{}\"}},"
        "{\"id\":\"fc9__tsig_QUI\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_day\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1_get_time\","
        "\"content\":\"noon\"},"
        "{\"role\":\"tool\",\"tool_call_id\":"
        "\"call_0_get_weather__tsig_Cg4-Ab_z_Q\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"fc9__tsig_QUI\","
        "\"content\":\"monday\"}]}", &r);

    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out,
        "{\"role\":\"model\",\"parts\":["
        "{\"functionCall\":{\"name\":\"get_weather\",\"args\":"
        "{\"city\":\"Paris\"}},\"thoughtSignature\":\"Cg4+Ab/z/Q==\"},"
        "{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}},"
        "{\"functionCall\":{\"name\":\"get_day\",\"args\":{}},"
        "\"thoughtSignature\":\"QUI=\"}]},"
        "{\"role\":\"user\",\"parts\":["
        "{\"functionResponse\":{\"name\":\"get_time\",\"response\":"
        "{\"content\":\"noon\"}}},"
        "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":"
        "{\"content\":\"sunny\"}}},"
        "{\"functionResponse\":{\"name\":\"get_day\",\"response\":"
        "{\"content\":\"monday\"}}}]}"));

    /* an id with the separator but no base64url after it: no signature */

    t_request(O2G,
        "{\"model\":\"gem\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"a__tsig_b.c\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"{}\"}},"
        "{\"id\":\"b__tsig_\",\"type\":\"function\",\"function\":"
        "{\"name\":\"g\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c__tsig_QUJDR\",\"type\":\"function\",\"function\":"
        "{\"name\":\"h\",\"arguments\":\"{}\"}}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_null(strstr(r.out, "thoughtSignature"));

    /* an Anthropic client's tool_use sent back */

    t_request(A2G,
        "{\"model\":\"gem\",\"max_tokens\":100,\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"call_0_get_weather__tsig_Cg4-Ab_z_Q\",\"name\":"
        "\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"call_0_get_weather__tsig_Cg4-Ab_z_Q\","
        "\"content\":\"sunny\"}]}]}", &r);
    assert_int_equal(r.rc, NGX_AI_RELAY_XLATE_OK);
    assert_non_null(strstr(r.out,
        "\"args\":{\"city\":\"Paris\"}},"
        "\"thoughtSignature\":\"Cg4+Ab/z/Q==\"}"));
    assert_non_null(strstr(r.out, "{\"functionResponse\":{\"name\":"
                                  "\"get_weather\""));

    /* a stream, whole and byte by byte */

    src =
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\","
        "\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":"
        "{\"city\":\"Paris\"}},\"thoughtSignature\":\"Cg4+Ab/z\\/Q==\"}]},"
        "\"index\":0}],\"modelVersion\":\"gemini-3-pro-preview\","
        "\"responseId\":\"r2\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\","
        "\"parts\":[{\"functionCall\":{\"name\":\"get_time\",\"args\":"
        "{}}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":"
        "{\"promptTokenCount\":10,\"candidatesTokenCount\":5,"
        "\"totalTokenCount\":15},\"modelVersion\":\"gemini-3-pro-preview\","
        "\"responseId\":\"r2\"}\r\n\r\n";

    memset(&a, 0, sizeof(a));

    t_stream_src(src, strlen(src), G2O, 0, 0, 0, &whole, &a);
    assert_non_null(whole.out);
    whole.out = realloc(whole.out, whole.len + 1);
    assert_non_null(whole.out);
    whole.out[whole.len] = '\0';

    assert_non_null(strstr((char *) whole.out,
        "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
        "\"call_0_get_weather__tsig_Cg4-Ab_z_Q\",\"type\":\"function\""));
    assert_non_null(strstr((char *) whole.out,
        "{\"index\":1,\"id\":\"call_1_get_time\",\"type\":\"function\""));
    assert_null(strstr((char *) whole.out, "thoughtSignature"));

    t_stream_src(src, strlen(src), G2O, 0, 0, 1, &part, &a);
    assert_int_equal(part.len, whole.len);
    assert_memory_equal(part.out, whole.out, whole.len);

    free(part.out);
    free(whole.out);
    t_free(&a);
}


/* a stream cut before its end is left cut: no invented ending */

static void
test_stream_cut(void **state)
{
    t_arena_t                 a;
    ngx_ai_relay_xlate_sse_t  x;
    static const char         ev[] = "{\"id\":\"c\",\"model\":\"m\","
                                     "\"choices\":[{\"index\":0,\"delta\":"
                                     "{\"content\":\"Hi\"}}]}";

    memset(&a, 0, sizeof(a));

    ngx_ai_relay_xlate_sse_init(&x, NGX_AI_RELAY_FMT_OPENAI_CHAT,
                                NGX_AI_RELAY_FMT_ANTHROPIC_MESSAGES,
                                t_alloc, &a);
    assert_int_equal(ngx_ai_relay_xlate_sse_event(&x, NULL, 0,
                         (const u_char *) ev, sizeof(ev) - 1),
                     NGX_AI_RELAY_XLATE_OK);
    x.out.len = 0;
    assert_int_equal(ngx_ai_relay_xlate_sse_finish(&x),
                     NGX_AI_RELAY_XLATE_OK);
    assert_int_equal(x.out.len, 0);

    t_free(&a);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_o2a_request),
        cmocka_unit_test(test_o2a_defaults),
        cmocka_unit_test(test_o2a_refused),
        cmocka_unit_test(test_a2o_request),
        cmocka_unit_test(test_a2o_refused),
        cmocka_unit_test(test_o2g_request),
        cmocka_unit_test(test_o2g_refused),
        cmocka_unit_test(test_g2o_request),
        cmocka_unit_test(test_g2o_response_ids),
        cmocka_unit_test(test_chained_requests),
        cmocka_unit_test(test_max_out),
        cmocka_unit_test(test_empty_and_ranges),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_thought_signature),
    };

    int  failed;

    failed = cmocka_run_group_tests(tests, NULL, NULL);

    /*
     * XLATE_WRITE=1 writes the expected translations instead of comparing
     * them: such a run never passes, so that regenerating them cannot make
     * a test run (make test, CI) succeed; run again without it
     */

    if (getenv("XLATE_WRITE")) {
        fprintf(stderr, "test_xlate: XLATE_WRITE is set: expected "
                "translations were written, not checked; read them, then "
                "run again without XLATE_WRITE\n");
        return 1;
    }

    return failed;
}

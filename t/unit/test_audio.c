
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The seconds a transcription priced by the second reserves, from an
 * audio file's size and first bytes.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ngx_ai_relay_audio.h"


static void
put_le32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}


static void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (v >> 24) & 0xff;
    p[1] = (v >> 16) & 0xff;
    p[2] = (v >> 8) & 0xff;
    p[3] = v & 0xff;
}


/* a RIFF/WAVE header, maybe with a LIST chunk before "fmt " */

static size_t
wav(unsigned char *h, uint32_t byte_rate, int list)
{
    size_t  n;

    memcpy(h, "RIFF\0\0\0\0WAVE", 12);
    n = 12;

    if (list) {
        memcpy(h + n, "LIST", 4);
        put_le32(h + n + 4, 5);                 /* odd: padded to 6 */
        memcpy(h + n + 8, "INFOx\0", 6);
        n += 14;
    }

    memcpy(h + n, "fmt ", 4);
    put_le32(h + n + 4, 16);
    h[n + 8] = 1; h[n + 9] = 0;                 /* PCM */
    h[n + 10] = 1; h[n + 11] = 0;               /* mono */
    put_le32(h + n + 12, 16000);
    put_le32(h + n + 16, byte_rate);
    h[n + 20] = 2; h[n + 21] = 0;
    h[n + 22] = 16; h[n + 23] = 0;
    n += 24;

    memcpy(h + n, "data", 4);
    put_le32(h + n + 4, 0);

    return n + 8;
}


static void
test_wav(void **state)
{
    unsigned char  h[256];
    size_t         n;

    n = wav(h, 32000, 0);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, n, 320044), 11);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, n, 320000), 10);

    n = wav(h, 32000, 1);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, n, 3200000), 100);

    /* a byte rate of 0 says nothing: the size at the lowest rate */
    n = wav(h, 0, 0);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, n, 320000), 320);

    /* cut before the byte rate */
    n = wav(h, 32000, 0);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, 20, 320000), 320);
}


static void
test_flac(void **state)
{
    unsigned char  h[64];
    uint64_t       total;

    memset(h, 0, sizeof(h));
    memcpy(h, "fLaC", 4);
    h[4] = 0x80;                                /* last block, STREAMINFO */
    h[7] = 34;

    /* 16000 Hz: 0x03e80, 20 bits over h[18], h[19], h[20] >> 4 */
    h[18] = 0x03;
    h[19] = 0xe8;
    h[20] = 0x00;

    total = 16000ULL * 61 + 1;
    h[21] = (unsigned char) ((total >> 32) & 0x0f);
    put_be32(h + 22, (uint32_t) total);

    assert_int_equal(ngx_ai_relay_audio_seconds(h, 42, 5000000), 62);

    /* no sample count: the size at the lowest rate */
    memset(h + 21, 0, 5);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, 42, 5000000), 5000);
}


static void
test_mp3_cbr(void **state)
{
    unsigned char  h[64];

    memset(h, 0, sizeof(h));

    /* MPEG 1 layer III, 128 kbit/s, 44100 Hz, stereo */
    h[0] = 0xff; h[1] = 0xfb; h[2] = 0x90; h[3] = 0x00;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600000), 100);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600001), 101);

    /* MPEG 2 layer III, 32 kbit/s, 16000 Hz, mono */
    h[1] = 0xf3; h[2] = 0x48; h[3] = 0xc0;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 400000), 100);

    /* a reserved version, a "free" bitrate, layer II: not read */
    h[1] = 0xeb; h[2] = 0x90;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 400000), 400);
    h[1] = 0xfb; h[2] = 0x00;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 400000), 400);
    h[1] = 0xfd; h[2] = 0x90;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 400000), 400);
}


static void
test_mp3_vbr(void **state)
{
    unsigned char  h[128];

    memset(h, 0, sizeof(h));

    /* MPEG 1 stereo: the Xing frame 4 + 32 bytes in; 1000 frames */
    h[0] = 0xff; h[1] = 0xfb; h[2] = 0x90; h[3] = 0x00;
    memcpy(h + 36, "Xing", 4);
    put_be32(h + 40, 0x0f);
    put_be32(h + 44, 1000);

    /* 1000 * 1152 / 44100 = 26.1: 27, whatever the size */
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 9000000), 27);

    /* Info (constant bitrate) the same */
    memcpy(h + 36, "Info", 4);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 9000000), 27);

    /* no frame count in the flags: the first frame's bitrate */
    put_be32(h + 40, 0x0e);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600000), 100);

    /* MPEG 2 mono: Xing 4 + 9 in, 576 samples a frame, 16000 Hz */
    memset(h, 0, sizeof(h));
    h[0] = 0xff; h[1] = 0xf3; h[2] = 0x48; h[3] = 0xc0;
    memcpy(h + 13, "Xing", 4);
    put_be32(h + 17, 1);
    put_be32(h + 21, 2000);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 9000000), 72);

    /* VBRI, 32 bytes after the header: frames at +14 */
    memset(h, 0, sizeof(h));
    h[0] = 0xff; h[1] = 0xfb; h[2] = 0x90; h[3] = 0x00;
    memcpy(h + 36, "VBRI", 4);
    put_be32(h + 50, 441);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 9000000), 12);
}


static void
test_id3(void **state)
{
    unsigned char  h[256];

    memset(h, 0, sizeof(h));

    /* a 100-byte ID3v2 tag, then a 128 kbit/s frame */
    memcpy(h, "ID3\x04\x00\x00", 6);
    h[9] = 100;
    h[110] = 0xff; h[111] = 0xfb; h[112] = 0x90; h[113] = 0x00;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600110), 100);

    /* a tag longer than the bytes kept: the lowest rate */
    h[8] = 0x7f;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600110), 1601);

    /* a size that is not syncsafe */
    h[8] = 0x80;
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 1600110), 1601);
}


static void
test_other(void **state)
{
    unsigned char  h[64];

    memset(h, 0, sizeof(h));
    memcpy(h, "OggS", 4);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 123456), 124);

    /* nothing at all */
    assert_int_equal(ngx_ai_relay_audio_seconds(h, 0, 0), 0);
    assert_int_equal(ngx_ai_relay_audio_seconds(NULL, 0, 1), 1);

    /* a head longer than the file counts only the file */
    memcpy(h, "RIFF", 4);
    assert_int_equal(ngx_ai_relay_audio_seconds(h, sizeof(h), 8), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_wav),
        cmocka_unit_test(test_flac),
        cmocka_unit_test(test_mp3_cbr),
        cmocka_unit_test(test_mp3_vbr),
        cmocka_unit_test(test_id3),
        cmocka_unit_test(test_other),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

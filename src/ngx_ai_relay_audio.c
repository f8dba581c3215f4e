
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * How long an audio file can play, read off the first bytes of its
 * multipart part (multipart.c keeps them): a transcription priced by the
 * second reserves that many seconds.  Only headers that say it outright
 * are read (WAV, FLAC, MPEG audio layer III); anything else is bounded by
 * its size at the lowest bitrate assumed.
 */


#include <string.h>

#include "ngx_ai_relay_audio.h"


static uint64_t ngx_ai_relay_audio_wav(const unsigned char *h, size_t len,
    uint64_t size);
static uint64_t ngx_ai_relay_audio_flac(const unsigned char *h, size_t len);
static uint64_t ngx_ai_relay_audio_mp3(const unsigned char *h, size_t len,
    uint64_t size);
static uint64_t ngx_ai_relay_audio_div_up(uint64_t a, uint64_t b);


#define ngx_ai_relay_le32(p)                                                  \
    ((uint32_t) (p)[0] | (uint32_t) (p)[1] << 8 | (uint32_t) (p)[2] << 16    \
     | (uint32_t) (p)[3] << 24)

#define ngx_ai_relay_be32(p)                                                  \
    ((uint32_t) (p)[0] << 24 | (uint32_t) (p)[1] << 16                       \
     | (uint32_t) (p)[2] << 8 | (uint32_t) (p)[3])


uint64_t
ngx_ai_relay_audio_seconds(const unsigned char *head, size_t head_len,
    uint64_t size)
{
    size_t    skip;
    uint64_t  s;

    if (size == 0) {
        return 0;
    }

    if (head_len > size) {
        head_len = (size_t) size;
    }

    s = 0;

    if (head_len >= 12 && memcmp(head, "RIFF", 4) == 0
        && memcmp(head + 8, "WAVE", 4) == 0)
    {
        s = ngx_ai_relay_audio_wav(head, head_len, size);

    } else if (head_len >= 4 && memcmp(head, "fLaC", 4) == 0) {
        s = ngx_ai_relay_audio_flac(head, head_len);

    } else if (head_len >= 10 && memcmp(head, "ID3", 3) == 0) {

        /* an ID3v2 tag first: its size is syncsafe, 7 bits a byte */

        if ((head[6] | head[7] | head[8] | head[9]) & 0x80) {
            goto fallback;
        }

        skip = 10 + ((size_t) head[6] << 21 | (size_t) head[7] << 14
                     | (size_t) head[8] << 7 | (size_t) head[9]);

        if (head[5] & 0x10) {
            skip += 10;                                   /* a footer */
        }

        if (skip < head_len) {
            s = ngx_ai_relay_audio_mp3(head + skip, head_len - skip,
                                       size - skip);
        }

    } else {
        s = ngx_ai_relay_audio_mp3(head, head_len, size);
    }

    if (s) {
        return s;
    }

fallback:

    return ngx_ai_relay_audio_div_up(size, NGX_AI_RELAY_AUDIO_MIN_RATE);
}


/* RIFF/WAVE: the "fmt " chunk's byte rate; the whole file counts as data */

static uint64_t
ngx_ai_relay_audio_wav(const unsigned char *h, size_t len, uint64_t size)
{
    size_t    pos;
    uint32_t  clen, rate;

    pos = 12;

    while (pos + 8 <= len) {
        clen = ngx_ai_relay_le32(h + pos + 4);

        if (memcmp(h + pos, "fmt ", 4) == 0) {
            if (clen < 16 || pos + 8 + 12 > len) {
                return 0;
            }

            rate = ngx_ai_relay_le32(h + pos + 8 + 8);

            return ngx_ai_relay_audio_div_up(size, rate);
        }

        if (clen > len) {
            return 0;
        }

        pos += 8 + (size_t) clen + (clen & 1);
    }

    return 0;
}


/* fLaC, then STREAMINFO: total samples / sample rate */

static uint64_t
ngx_ai_relay_audio_flac(const unsigned char *h, size_t len)
{
    uint32_t  rate;
    uint64_t  samples;

    if (len < 8 + 18 || (h[4] & 0x7f) != 0) {
        return 0;
    }

    rate = (uint32_t) h[18] << 12 | (uint32_t) h[19] << 4
           | (uint32_t) h[20] >> 4;

    samples = (uint64_t) (h[21] & 0x0f) << 32 | ngx_ai_relay_be32(h + 22);

    if (samples == 0) {
        return 0;                        /* the encoder did not know */
    }

    return ngx_ai_relay_audio_div_up(samples, rate);
}


/*
 * MPEG audio layer III: a Xing, Info or VBRI frame gives the number of
 * frames; without one the first frame's bitrate counts for the whole file
 * (constant bitrate)
 */

static uint64_t
ngx_ai_relay_audio_mp3(const unsigned char *h, size_t len, uint64_t size)
{
    size_t    side, at;
    uint32_t  frames, flags, kbps, rate, spf;
    unsigned  version, bri, sri, mono;

    static const uint16_t  kbps_v1[16] = {
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0
    };

    static const uint16_t  kbps_v2[16] = {
        0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0
    };

    static const uint32_t  rates[4][3] = {
        { 11025, 12000, 8000 },          /* MPEG 2.5 */
        { 0, 0, 0 },                     /* reserved */
        { 22050, 24000, 16000 },         /* MPEG 2 */
        { 44100, 48000, 32000 }          /* MPEG 1 */
    };

    if (len < 4 || h[0] != 0xff || (h[1] & 0xe0) != 0xe0
        || (h[1] & 0x06) != 0x02)                        /* layer III */
    {
        return 0;
    }

    version = (h[1] >> 3) & 0x03;
    bri = h[2] >> 4;
    sri = (h[2] >> 2) & 0x03;
    mono = ((h[3] >> 6) & 0x03) == 0x03;

    if (version == 1 || sri == 3) {
        return 0;
    }

    rate = rates[version][sri];
    kbps = (version == 3) ? kbps_v1[bri] : kbps_v2[bri];
    spf = (version == 3) ? 1152 : 576;

    if (version == 3) {
        side = mono ? 17 : 32;

    } else {
        side = mono ? 9 : 17;
    }

    /* Xing (variable bitrate) or Info (constant): the frame count */

    at = 4 + side;

    if (len >= at + 12
        && (memcmp(h + at, "Xing", 4) == 0 || memcmp(h + at, "Info", 4) == 0))
    {
        flags = ngx_ai_relay_be32(h + at + 4);
        frames = ngx_ai_relay_be32(h + at + 8);

        if ((flags & 1) && frames) {
            return ngx_ai_relay_audio_div_up((uint64_t) frames * spf, rate);
        }
    }

    /* VBRI (Fraunhofer), always 32 bytes after the header */

    at = 4 + 32;

    if (len >= at + 18 && memcmp(h + at, "VBRI", 4) == 0) {
        frames = ngx_ai_relay_be32(h + at + 14);

        if (frames) {
            return ngx_ai_relay_audio_div_up((uint64_t) frames * spf, rate);
        }
    }

    if (kbps == 0) {
        return 0;                        /* "free" bitrate: unknown */
    }

    return ngx_ai_relay_audio_div_up(size * 8, (uint64_t) kbps * 1000);
}


static uint64_t
ngx_ai_relay_audio_div_up(uint64_t a, uint64_t b)
{
    if (b == 0) {
        return 0;
    }

    return a / b + (a % b != 0);
}

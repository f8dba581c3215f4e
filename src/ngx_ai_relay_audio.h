
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * How long an audio file can play, from its size and its first bytes:
 * what a transcription priced by the second reserves before it goes.
 * Plain C, no nginx.
 */


#ifndef _NGX_AI_RELAY_AUDIO_H_INCLUDED_
#define _NGX_AI_RELAY_AUDIO_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * bytes per second of the lowest bitrate assumed for a file whose first
 * bytes do not say (8 kbit/s, MPEG audio's lowest; speech codecs at
 * lower rates are priced from the upstream's duration all the same, but
 * may cost more than was reserved)
 */
#define NGX_AI_RELAY_AUDIO_MIN_RATE  1000


/*
 * Whole seconds (rounded up) an audio file of size bytes plays at most,
 * head being its first head_len bytes: exact where the header says (WAV's
 * byte rate, FLAC's sample count, MP3's Xing/Info frame count, a constant
 * bitrate MP3's first frame), otherwise size / NGX_AI_RELAY_AUDIO_MIN_RATE.
 * 0 for an empty file.
 */
uint64_t ngx_ai_relay_audio_seconds(const unsigned char *head,
    size_t head_len, uint64_t size);


#endif /* _NGX_AI_RELAY_AUDIO_H_INCLUDED_ */

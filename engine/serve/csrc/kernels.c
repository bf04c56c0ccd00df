/*
 * routeshell's native kernels for CPU decoding (engine/serve/native.py), compiled on first use.
 *
 * routeshell_decode_attention: attention of one decode step, reading a bf16 key/value cache
 * directly. Each (row, head) has one fp32 query vector and `length` cached positions. The kernel
 * computes the scaled dot products, a softmax over the allowed positions and the weighted sum of
 * values, widening bf16 to fp32 as it reads (a shift: bf16 is the top half of an fp32). PyTorch's
 * own path first copies the whole cache to fp32 every step, then multiplies; this reads it once.
 *
 * routeshell_unit_rows: the input of an int8 matrix product, each row scaled to a largest
 * magnitude of 1 and given two more columns, -1 and 1, which the matrix multiplies by zeros
 * (engine/serve/quantize.py). FBGEMM quantizes its input with one scale for the whole tensor;
 * after this, that scale is the same for every call, so each row is quantized by its own range,
 * whatever rows share its batch.
 *
 * No libm: exp is computed by range reduction and a polynomial (Cephes' expf), so that the loops
 * vectorize without -ffast-math, whose startup code would change the whole process's
 * floating-point mode.
 */
/* No headers: a bare compiler builds it (GCC and Clang predefine these types). */
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
#define memcpy __builtin_memcpy

/* The ABI version that engine/serve/native.py checks before calling. */
int64_t routeshell_kernel_version(void) { return 4; }

static inline float widen(uint16_t half) {
    uint32_t bits = (uint32_t)half << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* exp(x) for x <= 0, to about 1 ulp; 0 below -87 (under FLT_MIN) and for NaN, which the
   conversion to an integer below must never see. */
static inline float exp_nonpositive(float x) {
    if (!(x >= -87.0f)) return 0.0f;
    float n = (float)(int32_t)(x * 1.44269504088896341f - 0.5f); /* round(x / ln 2), x <= 0 */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * z + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/*
 * query:  fp32, (rows, heads, size), contiguous.
 * keys:   bf16 as uint16, element (r, kh, p, s) at keys[r*key_row + kh*key_head + p*key_pos + s].
 * values: likewise with their own strides.
 * allowed: NULL (every position) or bytes, position p of row r at allowed[r*allowed_row + p].
 * out:    fp32, (rows, heads, size), contiguous.
 * scores: scratch of `length` floats.
 * Query head h reads key/value head h / (heads / kv_heads). Returns 0, or -1 for bad shapes.
 */
int64_t routeshell_decode_attention(
    int64_t rows, int64_t heads, int64_t kv_heads, int64_t length, int64_t size,
    const float *query,
    const uint16_t *keys, int64_t key_row, int64_t key_head, int64_t key_pos,
    const uint16_t *values, int64_t value_row, int64_t value_head, int64_t value_pos,
    const uint8_t *allowed, int64_t allowed_row,
    float scale, float *out, float *scores)
{
    if (rows < 0 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 || length < 1 || size < 1)
        return -1;
    int64_t group = heads / kv_heads;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *ok = allowed ? allowed + r * allowed_row : 0;
        for (int64_t h = 0; h < heads; h++) {
            const float *q = query + (r * heads + h) * size;
            const uint16_t *k = keys + r * key_row + (h / group) * key_head;
            const uint16_t *v = values + r * value_row + (h / group) * value_head;
            float *o = out + (r * heads + h) * size;
            float best = 0.0f;
            int any = 0;
            for (int64_t p = 0; p < length; p++) {
                if (ok && !ok[p]) continue;
                const uint16_t *kp = k + p * key_pos;
                float dot = 0.0f;
                for (int64_t s = 0; s < size; s++) dot += q[s] * widen(kp[s]);
                dot *= scale;
                scores[p] = dot;
                if (!any || dot > best) best = dot;
                any = 1;
            }
            for (int64_t s = 0; s < size; s++) o[s] = 0.0f;
            if (!any) continue; /* nothing to attend to: zeros */
            float total = 0.0f;
            for (int64_t p = 0; p < length; p++) {
                float e = (ok && !ok[p]) ? 0.0f : exp_nonpositive(scores[p] - best);
                scores[p] = e;
                total += e;
            }
            float inverse = 1.0f / total;
            for (int64_t p = 0; p < length; p++) {
                float w = scores[p] * inverse;
                if (w == 0.0f) continue;
                const uint16_t *vp = v + p * value_pos;
                for (int64_t s = 0; s < size; s++) o[s] += w * widen(vp[s]);
            }
        }
    }
    return 0;
}

/*
 * x: fp32 rows x cols, row r at x + r*row_stride, each row contiguous.
 * out: fp32 rows x (cols + 2), contiguous: row r is x's row r over its largest magnitude (a row of
 * zeros stays zeros), then -1 and 1 (the matrix has two columns of zeros there).
 * scales: rows floats, the largest magnitude of each row (1 for a row of zeros, or one holding an
 * infinity or a NaN: such a row's products are not numbers either way).
 * Returns 0, or -1 for bad shapes.
 */
int64_t routeshell_unit_rows(int64_t rows, int64_t cols, const float *x, int64_t row_stride, float *out, float *scales)
{
    if (rows < 0 || cols < 1) return -1;
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * row_stride;
        float *o = out + r * (cols + 2);
        /* The largest magnitude, compared as bits: without the sign, the bits of floats order as
           the floats do, and an integer maximum vectorizes where a float one (NaN rules) does not. */
        uint32_t largest_bits = 0;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t bits;
            memcpy(&bits, &in[c], sizeof bits);
            bits &= 0x7fffffffu;
            largest_bits = bits > largest_bits ? bits : largest_bits;
        }
        float largest;
        memcpy(&largest, &largest_bits, sizeof largest);
        if (!(largest > 0.0f) || largest_bits >= 0x7f800000u) largest = 1.0f; /* zeros, inf or NaN */
        scales[r] = largest;
        float inverse = 1.0f / largest;
        for (int64_t c = 0; c < cols; c++) o[c] = in[c] * inverse;
        o[cols] = -1.0f;
        o[cols + 1] = 1.0f;
    }
    return 0;
}

/* The TopK epilogue shared by every kernel variant: a size-k min-heap keyed
 * on (value, -index) so that among equal values the lower index is kept. */
#include <math.h>

#include "kernels/kernel.h"

/* a ranks below b: smaller value, or equal value and higher index. */
static int ranks_below(const saemon_topk_entry *a, const saemon_topk_entry *b)
{
    return a->value < b->value || (a->value == b->value && a->index > b->index);
}

static void sift_down(saemon_topk_entry *heap, size_t size, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < size && ranks_below(&heap[l], &heap[m]))
            m = l;
        if (r < size && ranks_below(&heap[r], &heap[m]))
            m = r;
        if (m == i)
            return;
        saemon_topk_entry t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

void saemon_topk_push(saemon_topk_entry *heap, size_t *size, size_t k, float value, uint32_t index)
{
    if (k == 0 || isnan(value))
        return;
    saemon_topk_entry e = {value, index};
    if (*size < k) {
        size_t i = (*size)++;
        heap[i] = e;
        while (i > 0) { /* sift up */
            size_t p = (i - 1) / 2;
            if (!ranks_below(&heap[i], &heap[p]))
                break;
            saemon_topk_entry t = heap[i];
            heap[i] = heap[p];
            heap[p] = t;
            i = p;
        }
        return;
    }
    if (ranks_below(&e, &heap[0]) || (e.value == heap[0].value && e.index == heap[0].index))
        return;
    heap[0] = e;
    sift_down(heap, *size, 0);
}

static void sort_by_index(uint32_t *index, float *value, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) { /* n <= k, small: insertion sort */
        uint32_t ix = index[i];
        float v = value[i];
        uint32_t j = i;
        while (j > 0 && index[j - 1] > ix) {
            index[j] = index[j - 1];
            value[j] = value[j - 1];
            j--;
        }
        index[j] = ix;
        value[j] = v;
    }
}

uint32_t saemon_topk_emit(saemon_topk_entry *heap, size_t size, uint32_t *index, float *value)
{
    uint32_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (heap[i].value > 0.0f) { /* ReLU after selection */
            index[n] = heap[i].index;
            value[n] = heap[i].value;
            n++;
        }
    }
    sort_by_index(index, value, n);
    return n;
}

// GPU kernel timeline for any CUDA program, without nsys: a CUDA injection library
// (CUDA_INJECTION64_PATH) that records every kernel's start/end through CUPTI's activity API
// and writes them as TSV (start_ns, end_ns, stream, name) to $RMD_TRACE_OUT at exit.
//
// CUPTI is dlopen'ed from $RMD_CUPTI_LIB (the device has it in PyTorch's wheels), so this builds
// with gcc alone: only the few entry points and the stable prefix of the kernel record
// (unchanged from CUpti_ActivityKernel4 to CUpti_ActivityKernel13) are declared here.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int CUptiResult;
typedef void (*ReqFn)(uint8_t** buf, size_t* size, size_t* max_records);
typedef void (*DoneFn)(void* ctx, uint32_t stream, uint8_t* buf, size_t size, size_t valid);

// Prefix of CUpti_ActivityKernelN (PACKED_ALIGNMENT = 8-byte aligned records).
typedef struct {
    int32_t kind;
    uint8_t cache_config, shared_memory_config;
    uint16_t registers_per_thread;
    int32_t partitioned_requested, partitioned_executed;
    uint64_t start, end, completed;
    uint32_t device_id, context_id, stream_id;
    int32_t grid[3], block[3];
    int32_t static_smem, dynamic_smem;
    uint32_t local_per_thread, local_total, correlation_id;
    int64_t grid_id;
    const char* name;
} KernelPrefix;

#define KIND_CONCURRENT_KERNEL 10
#define BUF_SIZE (8u << 20)

static CUptiResult (*register_callbacks)(ReqFn, DoneFn);
static CUptiResult (*enable)(int);
static CUptiResult (*next_record)(uint8_t*, size_t, void**);
static CUptiResult (*flush_all)(uint32_t);
static FILE* out;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long records;

static void requested(uint8_t** buf, size_t* size, size_t* max_records) {
    *buf = aligned_alloc(8, BUF_SIZE);
    *size = *buf ? BUF_SIZE : 0;
    *max_records = 0;
}

static void completed(void* ctx, uint32_t stream, uint8_t* buf, size_t size, size_t valid) {
    (void)ctx;
    (void)stream;
    (void)size;
    void* rec = NULL;
    pthread_mutex_lock(&lock);
    while (valid > 0 && next_record(buf, valid, &rec) == 0) {
        const KernelPrefix* k = (const KernelPrefix*)rec;
        if (k->kind == KIND_CONCURRENT_KERNEL) {
            fprintf(out, "%llu\t%llu\t%u\t%s\n", (unsigned long long)k->start, (unsigned long long)k->end, k->stream_id,
                    k->name ? k->name : "?");
            records++;
        }
    }
    pthread_mutex_unlock(&lock);
    free(buf);
}

static void at_exit(void) {
    flush_all(1);
    pthread_mutex_lock(&lock);
    fflush(out);
    fprintf(stderr, "rmd_trace: %llu kernel records\n", records);
    pthread_mutex_unlock(&lock);
}

// Called by the CUDA driver at cuInit when CUDA_INJECTION64_PATH names this library.
int InitializeInjection(void) {
    const char* lib = getenv("RMD_CUPTI_LIB");
    const char* path = getenv("RMD_TRACE_OUT");
    void* h = dlopen(lib ? lib : "libcupti.so", RTLD_NOW | RTLD_GLOBAL);
    if (!h || !path) {
        fprintf(stderr, "rmd_trace: no CUPTI (%s) or no RMD_TRACE_OUT; not tracing\n", dlerror());
        return 1;
    }
    register_callbacks = (CUptiResult(*)(ReqFn, DoneFn))dlsym(h, "cuptiActivityRegisterCallbacks");
    enable = (CUptiResult(*)(int))dlsym(h, "cuptiActivityEnable");
    next_record = (CUptiResult(*)(uint8_t*, size_t, void**))dlsym(h, "cuptiActivityGetNextRecord");
    flush_all = (CUptiResult(*)(uint32_t))dlsym(h, "cuptiActivityFlushAll");
    out = fopen(path, "w");
    if (!register_callbacks || !enable || !next_record || !flush_all || !out) {
        fprintf(stderr, "rmd_trace: missing CUPTI entry points or cannot write %s\n", path);
        return 1;
    }
    int r1 = register_callbacks(requested, completed);
    int r2 = enable(KIND_CONCURRENT_KERNEL);
    fprintf(stderr, "rmd_trace: register %d, enable %d, writing %s\n", r1, r2, path);
    atexit(at_exit);
    return 1;
}

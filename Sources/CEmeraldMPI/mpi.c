#include "emerald_mpi.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>

// Open MPI's handles are addresses of exported objects (MPI_COMM_WORLD is
// &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM &ompi_mpi_op_sum) and
// MPI_IN_PLACE is (void *)1; MPICH's differ, so this shim is Open MPI's.
typedef void *Handle;
static int (*p_init)(int *, char ***);
static int (*p_rank)(Handle, int *);
static int (*p_size)(Handle, int *);
static int (*p_allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*p_barrier)(Handle);
static int (*p_abort)(Handle, int);
static int (*p_finalize)(void);
static Handle world, type_float, type_double, op_sum;

int emerald_mpi_load(const char *path, char *err, size_t errlen) {
    void *lib = dlopen(path ? path : "libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) { snprintf(err, errlen, "%s", dlerror()); return -1; }
#define SYM(var, name) do { *(void **)(&var) = dlsym(lib, name); \
        if (!var) { snprintf(err, errlen, "%s has no %s: not Open MPI", path ? path : "libmpi.so.40", name); return -1; } } while (0)
    SYM(p_init, "MPI_Init"); SYM(p_rank, "MPI_Comm_rank"); SYM(p_size, "MPI_Comm_size");
    SYM(p_allreduce, "MPI_Allreduce"); SYM(p_barrier, "MPI_Barrier"); SYM(p_abort, "MPI_Abort");
    SYM(p_finalize, "MPI_Finalize");
    SYM(world, "ompi_mpi_comm_world"); SYM(type_float, "ompi_mpi_float"); SYM(type_double, "ompi_mpi_double");
    SYM(op_sum, "ompi_mpi_op_sum");
#undef SYM
    return 0;
}

int emerald_mpi_init(int *rank, int *size) {
    if (p_init(NULL, NULL) != 0) return -1;
    if (p_rank(world, rank) != 0 || p_size(world, size) != 0) return -1;
    return 0;
}

static int allreduce(void *buffer, long count, Handle type, size_t width) {
    char *p = buffer;
    while (count > 0) {  // MPI counts are ints
        int n = count > INT_MAX / 2 ? INT_MAX / 2 : (int)count;
        if (p_allreduce((void *)1, p, n, type, op_sum, world) != 0) return -1;
        p += (size_t)n * width;
        count -= n;
    }
    return 0;
}

int emerald_mpi_allreduce_float(float *buffer, long count) { return allreduce(buffer, count, type_float, sizeof(float)); }
int emerald_mpi_allreduce_double(double *buffer, long count) { return allreduce(buffer, count, type_double, sizeof(double)); }
int emerald_mpi_barrier(void) { return p_barrier(world); }
void emerald_mpi_abort(int code) { p_abort(world, code); }
int emerald_mpi_finalize(void) { return p_finalize(); }

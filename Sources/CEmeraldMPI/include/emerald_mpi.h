// Open MPI, loaded at run time: Emerald links no MPI library, so the same binary runs on
// machines without one. Only the calls data-parallel training needs.
#pragma once
#include <stddef.h>

// Loads libmpi (path, or "libmpi.so.40" when NULL) and its symbols; 0 on success, else -1 with
// the reason in err.
int emerald_mpi_load(const char *path, char *err, size_t errlen);
// MPI_Init; fills rank and size. 0 on success.
int emerald_mpi_init(int *rank, int *size);
// In-place sum over all ranks of count floats (or doubles). 0 on success.
int emerald_mpi_allreduce_float(float *buffer, long count);
int emerald_mpi_allreduce_double(double *buffer, long count);
// Every rank waits for all.
int emerald_mpi_barrier(void);
// Ends every rank of the job with `code`.
void emerald_mpi_abort(int code);
// MPI_Finalize.
int emerald_mpi_finalize(void);

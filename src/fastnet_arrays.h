/* A numpy array's shape, read in C.
 *
 * The lanes (src/_send_lane.pxi, src/_recv_lane.pxi) make Batch._check_layout's
 * test on every call: reading ``array.shape`` from Python builds a tuple and
 * compares it, several times the cost of the rest of a one-datagram receive.
 * These read the array struct's own fields instead. Only the struct's
 * accessors (numpy/ndarraytypes.h) are used, not numpy's C API table, so the
 * module needs no import_array(); their fields are laid out alike in numpy 1.x
 * and 2.x. */
#ifndef FASTNET_ARRAYS_H
#define FASTNET_ARRAYS_H

#include <Python.h>
#include <numpy/ndarraytypes.h>

/* ``a`` (a numpy.ndarray, which the caller checked) has shape (rows, cols). */
static inline int fastnet_shape_is(PyObject *a, Py_ssize_t rows, Py_ssize_t cols)
{
    PyArrayObject *arr = (PyArrayObject *)a;
    const npy_intp *dims = PyArray_DIMS(arr);
    return PyArray_NDIM(arr) == 2 && dims[0] == rows && dims[1] == cols;
}

#endif

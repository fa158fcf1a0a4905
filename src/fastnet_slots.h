/* An object's ``__slots__`` field, read and written at its offset.
 *
 * A slot of a class made by a class statement is served by a member
 * descriptor whose PyMemberDef says T_OBJECT_EX at a fixed byte offset in
 * the instance. Calling the descriptor (its tp_descr_get, tp_descr_set)
 * checks the object's type, finds the member and switches on its kind, on
 * every call (docs/design/send-lane.md has the cost). What it does for
 * T_OBJECT_EX, once those are settled, is what these do
 * (Objects/structmember.c, PyMember_GetOne and PyMember_SetOne).
 * src/_fields.pxi takes the offset only from a member descriptor of this
 * kind, and uses it only on objects of exactly the type it was found for:
 * any other object goes through the descriptor, or getattr. */
#ifndef FASTNET_SLOTS_H
#define FASTNET_SLOTS_H

#include <Python.h>
#include <structmember.h>

/* The offset of the writable object slot that ``descr`` serves, or -1 if
 * it is not a member descriptor of that plain kind (read-only, audited,
 * or a relative offset: anything but flags 0). */
static inline Py_ssize_t fastnet_slot_offset(PyObject *descr)
{
    PyMemberDef *member;
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type))
        return -1;
    member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || member->flags != 0 || member->offset <= 0)
        return -1;
    return member->offset;
}

/* The slot's value (a borrowed reference, which the caller takes at once),
 * or NULL with no error set if the slot is empty: the caller then asks the
 * descriptor, which raises AttributeError as Python would. */
static inline PyObject *fastnet_slot_peek(PyObject *obj, Py_ssize_t offset)
{
    return *(PyObject **)((char *)obj + offset);
}

/* Stores ``value`` (not NULL) in the slot: PyMember_SetOne's order, the
 * new value in place before the old one's reference is dropped. */
static inline void fastnet_slot_set(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject **slot = (PyObject **)((char *)obj + offset);
    PyObject *old = *slot;
    Py_INCREF(value);
    *slot = value;
    Py_XDECREF(old);
}

#endif

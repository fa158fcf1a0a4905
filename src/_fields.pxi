# The socket's and the Batch's fields, for the lanes (src/_socket_use.pxi,
# src/_send_lane.pxi, src/_recv_lane.pxi): read and written through their
# slots, without the attribute lookup a Python access makes.


from cpython.object cimport Py_TYPE, PyObject, PyTypeObject
from types import MemberDescriptorType as _MemberDescriptor

cdef extern from "fastnet_slots.h":
    Py_ssize_t fastnet_slot_offset(object descr)
    PyObject *fastnet_slot_peek(object obj, Py_ssize_t offset)
    void fastnet_slot_set(object obj, Py_ssize_t offset, object value)


cdef class _Field:
    """One attribute of an object, read and written through its slot when it has one.

    fastnet.socket and fastnet.Batch keep the fields the lanes touch on
    every call in ``__slots__``. A Python attribute access finds a slot's
    member descriptor in the type's MRO, then calls it; for a field in the
    instance dict, it looks in the type and then in the dict, on every
    access (docs/design/send-lane.md has the cost). Here the descriptor
    is found once, for the object's type; a member descriptor is a data
    descriptor, so nothing in the instance dict can shadow it. For an
    object of exactly that type the slot is then read and written at its
    offset (src/fastnet_slots.h), as the descriptor itself would; for any
    other object, or an empty slot (whose AttributeError the descriptor
    raises), the descriptor is called. Any other kind of attribute (a
    subclass that makes the name a property, say) is read and written with
    getattr and setattr.
    """

    cdef str name
    cdef type cls
    cdef object descr  # the slot's member descriptor, or None
    cdef Py_ssize_t offset  # where the slot lies in an object of type cls; -1: ask descr

    def __init__(self, type cls, str name):
        self.name = name
        self.cls = cls
        self.descr = None
        self.offset = -1
        for klass in cls.__mro__:  # the lookup an attribute access makes
            if name in klass.__dict__:
                if type(klass.__dict__[name]) is _MemberDescriptor:
                    self.descr = klass.__dict__[name]
                    self.offset = fastnet_slot_offset(self.descr)
                break

    cdef inline bint _at_offset(self, object obj) noexcept:
        return self.offset > 0 and <PyTypeObject *>Py_TYPE(obj) == <PyTypeObject *>self.cls

    cdef inline object get(self, object obj):
        cdef PyObject *value
        if self._at_offset(obj):
            value = fastnet_slot_peek(obj, self.offset)
            if value is not NULL:
                return <object>value
        if self.descr is None:
            return getattr(obj, self.name)
        return Py_TYPE(self.descr).tp_descr_get(self.descr, obj, self.cls)

    cdef inline int set(self, object obj, object value) except -1:
        if self._at_offset(obj):
            fastnet_slot_set(obj, self.offset, value)
            return 0
        if self.descr is None:
            setattr(obj, self.name, value)
            return 0
        return Py_TYPE(self.descr).tp_descr_set(self.descr, obj, value)


cdef class _BatchFields:
    """The fields of fastnet.Batch that the lanes read and write on every call.

    A lane takes only a Batch of exactly this type (a subclass goes to the
    general path), so the fields are bound once, when the lane is made.
    """

    cdef _Field count, user, family, capacity, scratch

    def __init__(self, type batch_type):
        self.count = _Field(batch_type, "_count")
        self.user = _Field(batch_type, "_user")  # Batch._claim's in-use mark
        self.family = _Field(batch_type, "_family")
        self.capacity = _Field(batch_type, "_capacity")
        self.scratch = _Field(batch_type, "_scratch")


cdef _Scratch _scratch_if_kept(object batch, _BatchFields fields):
    """The Batch's scratch if its arrays keep their shapes (Batch._check_layout's test), else None.

    For the lanes, which hand a reshaped Batch to the general path, where
    Batch._check_layout raises the error. The scratch made, _scratch_of's
    test is made through the slots; the first call makes it there. One
    reshaped before its first use may have arrays the scratch's typed views
    refuse (ValueError): None too.
    """
    cdef _Scratch scratch = fields.scratch.get(batch)
    if scratch is None or scratch.capacity != fields.capacity.get(batch):
        try:
            scratch = _scratch_of(batch)
        except ValueError:
            return None
    return scratch if scratch.layout_kept() else None

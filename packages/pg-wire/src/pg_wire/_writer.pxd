# cython: language_level=3
"""C-level contract of the frontend message writers.

Each writer appends one complete message to a pg_codecs WriteBuffer, or
raises and leaves the buffer exactly as it was. ``start_bind`` /
``end_bind`` are the exception: they bracket a Bind whose parameter section
the caller writes itself (see _writer.pyx).
"""

from libc.stdint cimport int32_t, uint32_t

from pg_codecs._buffer cimport WriteBuffer


cpdef void write_startup_message(WriteBuffer buf, object parameters,
                                 int32_t protocol_version=*) except *
cpdef void write_ssl_request(WriteBuffer buf) except *
cpdef void write_gssenc_request(WriteBuffer buf) except *
cpdef void write_cancel_request(WriteBuffer buf, int32_t process_id,
                                object secret_key) except *

cpdef void write_password_message(WriteBuffer buf, object password) except *
cpdef void write_sasl_initial_response(WriteBuffer buf, str mechanism,
                                       object data) except *
cpdef void write_sasl_response(WriteBuffer buf, object data) except *
cpdef void write_gss_response(WriteBuffer buf, object data) except *

cpdef void write_query(WriteBuffer buf, str query) except *
cpdef void write_parse(WriteBuffer buf, str name, str query,
                       object param_types=*) except *
cpdef void write_bind(WriteBuffer buf, str portal, str statement,
                      object bind_data, object result_formats=*) except *
cpdef void start_bind(WriteBuffer buf, str portal, str statement) except *
cpdef void write_bind_params(WriteBuffer buf, object formats, object values) except *
cpdef void end_bind(WriteBuffer buf, object result_formats=*) except *
cpdef void abort_message(WriteBuffer buf) except *
cpdef void write_bind_execute(WriteBuffer buf, str portal, str statement, object encoder,
                              object args, object result_formats=*, int32_t max_rows=*,
                              bint sync=*) except *
cpdef void write_describe(WriteBuffer buf, object kind, str name) except *
cpdef void write_execute(WriteBuffer buf, str portal, int32_t max_rows=*) except *
cpdef void write_close(WriteBuffer buf, object kind, str name) except *
cpdef void write_sync(WriteBuffer buf) except *
cpdef void write_flush(WriteBuffer buf) except *
cpdef void write_terminate(WriteBuffer buf) except *

cpdef void write_copy_data(WriteBuffer buf, object data) except *
cpdef bint write_copy_records(WriteBuffer buf, object encoder, object records,
                              Py_ssize_t max_bytes) except -1
cpdef void write_copy_done(WriteBuffer buf) except *
cpdef void write_copy_fail(WriteBuffer buf, str message) except *

cpdef void write_function_call(WriteBuffer buf, uint32_t function_oid,
                               object arg_formats, object args,
                               int result_format=*) except *

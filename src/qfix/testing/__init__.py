"""Test and benchmark support: the reference engine, inbound-record builders, generators."""

from qfix.testing.builders import (
    assert_chain,
    batch,
    cancel,
    decode,
    default_account,
    mass_cancel,
    new_order,
    process_decoded,
    replace,
)
from qfix.testing.generators import (
    Workload,
    insert,
    load_stream,
    mix,
    multi,
    random_stream,
    save_stream,
    stream_digest,
    workload,
)
from qfix.testing.reference import ReferenceEngine, output_bound_new_order

__all__ = [
    "ReferenceEngine",
    "Workload",
    "assert_chain",
    "batch",
    "cancel",
    "decode",
    "default_account",
    "insert",
    "load_stream",
    "mass_cancel",
    "mix",
    "multi",
    "new_order",
    "output_bound_new_order",
    "process_decoded",
    "random_stream",
    "replace",
    "save_stream",
    "stream_digest",
    "workload",
]

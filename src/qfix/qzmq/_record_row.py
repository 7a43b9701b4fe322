"""The row of numbers a QZMQ session lends to the compiled record kernels
(``qfix.qzmq._record_kernel``): its columns, apart from the kernels so that the session
layer can fill and read rows without importing Numba."""

from __future__ import annotations

from typing import Final

__all__ = ["HAND_BACK", "HEADER_LEN", "RECORD_OVERHEAD", "ROW_COLUMNS"]

HEADER_LEN: Final = 10  #: a record's header: type, epoch, sequence number
RECORD_OVERHEAD: Final = 26  #: a record's bytes besides its plaintext: the header and the tag

# --- a session's row ---------------------------------------------------------------
ROW_RECV_CTX: Final = 0  #: address of the receive key's EVP context
ROW_RECV_IV_HI: Final = 1  #: the receive IV's first 4 bytes
ROW_RECV_IV_LO: Final = 2  #: its last 8 bytes (as int64), XORed with the sequence number
ROW_RECV_EPOCH: Final = 3  #: the receive key's epoch, mod 256 (what a record header holds)
ROW_RECV_NEXT: Final = 4  #: the next sequence number expected
ROW_RECV_RECORDS: Final = 5  #: records opened under the receive key
ROW_RECV_BLOCKS: Final = 6  #: and their AES blocks
ROW_SEND_CTX: Final = 7
ROW_SEND_IV_HI: Final = 8
ROW_SEND_IV_LO: Final = 9
ROW_SEND_EPOCH: Final = 10
ROW_SEND_SEQ: Final = 11  #: the next sequence number to seal with
ROW_SEND_RECORDS: Final = 12
ROW_SEND_BLOCKS: Final = 13
ROW_SEND_RECORD_LIMIT: Final = 14  #: the session's rekey_after_records
ROW_SEND_BLOCK_LIMIT: Final = 15  #: the session's rekey_after_blocks
ROW_LEASED: Final = 16  #: 1 while the row is the session's state; 0 once it was recalled
ROW_COLUMNS: Final = 17

#: what a kernel returns for a record it leaves to the session's Python code
HAND_BACK: Final = -1

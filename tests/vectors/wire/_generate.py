"""Regenerate the struct-packed golden vectors: `python tests/vectors/wire/_generate.py`.

Independent of qfix: the formats are WIRE.md §3.1's table (and docs/wire.md's for the
reference-data templates 47 and 48) and the values follow a fixed rule per struct code,
except for 47 and 48, which carry a realistic example (``EXAMPLES``) so that the symbol
and the prices read as they would on a feed. The codec's dtypes are thereby checked
against Python's struct module.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

# (templateId, schemaId, name, struct format) as printed in the wire design, §3.1
FORMATS = [
    (1, 60, "NewOrderSingle", "<HHHHQQqIIIIIcccBB1sH"),
    (2, 60, "OrderCancelRequest", "<HHHHQQQQIc15s"),
    (3, 60, "OrderCancelReplaceRequest", "<HHHHQQQqIIIcccBI"),
    (4, 60, "OrderMassCancelRequest", "<HHHHQQIIcc26s"),
    (10, 60, "ExecutionReport", "<HHHHQQQQqIIccBB"),
    (11, 60, "OrderCancelReject", "<HHHHQQQQQccBB8s"),
    (12, 60, "OrderMassCancelReport", "<HHHHQQQIIccBBIc11s"),
    (13, 60, "BusinessMessageReject", "<HHHHQQHHHHIHB21s"),
    (20, 60, "Heartbeat", "<HHHHQQQ28s"),
    (21, 60, "RetransmitRequest", "<HHHHQQI32s"),
    (22, 60, "RetransmitComplete", "<HHHHQQQIIB19s"),
    (30, 61, "SecurityStatus", "<HHHHQIIBB33sB"),
    (31, 61, "AddOrder", "<HHHHQIIQqIc14sB"),
    (32, 61, "OrderExecuted", "<HHHHQIIQqIIQB2sB"),
    (33, 61, "OrderReduced", "<HHHHQIIQII19sB"),
    (34, 61, "OrderDelete", "<HHHHQIIQ27sB"),
    (35, 61, "OrderReplace", "<HHHHQIIQQqIc6sB"),
    (36, 61, "Trade", "<HHHHQIIQqIBB13sB"),
    (37, 61, "BookLevel", "<HHHHQIIqQIcB13sB"),
    (38, 61, "BestBidOffer", "<HHHHQIIqqQQ3sB"),
    (39, 61, "SnapshotStart", "<HHHHQIIQIB22sB"),
    (40, 61, "SnapshotOrder", "<HHHHQIIQqIc14sB"),
    (41, 61, "SnapshotEnd", "<HHHHQIIQ27sB"),
    (42, 61, "ChannelHeartbeat", "<HHHHQIIQB26sB"),
    (43, 61, "SnapshotRequest", "<HHHHQIIQB26sB"),
    (44, 61, "ReplayRequest", "<HHHHQIIQQIB14sB"),
    (45, 61, "RequestComplete", "<HHHHQIIQQIB14sB"),
    (46, 61, "IndicativeAuction", "<HHHHQIIqQQB10sB"),
    (47, 61, "SecurityDefinition", "<HHHHQIIqII16sB2sB"),
    (48, 61, "SecurityLimits", "<HHHHQIIqqqq3sB"),
]

_T = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
_P9 = 10**9  # PRICE9 units per 1.0
#: block values (header excluded) of the templates that carry a realistic example instead
#: of the fixed rule: instrument 42 "BTC-USD", tick 0.01, RptSeq 1, EndOfEvent
EXAMPLES: dict[int, list[object]] = {
    47: [
        _T,  # TransactTime
        42,  # SecurityID
        1,  # RptSeq
        _P9 // 100,  # MinPriceIncrement 0.01
        1_000_000,  # MaxTradeVol, lots
        100,  # RoundLot, base units per lot
        b"BTC-USD".ljust(16, b"\x00").hex(),  # Symbol
        17,  # TradingStatus Continuous
        "0000",  # Reserved
        0x80,  # MatchEventIndicator EndOfEvent
    ],
    48: [
        _T,  # TransactTime
        42,  # SecurityID
        1,  # RptSeq
        60_000 * _P9,  # LowLimitPrice 60,000.00
        70_000 * _P9,  # HighLimitPrice 70,000.00
        10**15,  # MaxNotional, |ticks| x lots
        1_000,  # Collar, ticks
        "000000",  # Reserved
        0x80,  # MatchEventIndicator EndOfEvent
    ],
}


def _codes(fmt: str) -> list[str]:
    out, count = [], ""
    for ch in fmt[1:]:
        if ch.isdigit():
            count += ch
        else:
            out.append(count + ch if ch == "s" else ch)
            count = ""
    return out


def values_for(template_id: int, schema_id: int, fmt: str) -> list[object]:
    """Header, then a distinct value per field; chars cycle through '1', '2', '0'.
    Templates listed in EXAMPLES take their block values from there."""
    values: list[object] = [52, template_id, schema_id, 0]
    if template_id in EXAMPLES:
        return values + EXAMPLES[template_id]
    for i, code in enumerate(_codes(fmt)[4:], start=1):
        if code == "Q":
            values.append(0x0102030405060708 * i % 2**64)
        elif code == "q":
            values.append(-(10**9) * 65_000 * i if i % 2 else 10**9 * 123 + i)
        elif code == "I":
            values.append(1_000_003 * i)
        elif code == "H":
            values.append(20_000 + i)
        elif code == "B":
            values.append((7 * i) % 256)
        elif code == "c":
            values.append("120"[i % 3])
        else:  # Reserved: zero
            values.append("00" * int(code[:-1]))
    return values


def pack(fmt: str, values: list[object]) -> bytes:
    args = []
    for code, value in zip(_codes(fmt), values, strict=True):
        if code == "c":
            args.append(str(value).encode("ascii"))
        elif code.endswith("s"):
            args.append(bytes.fromhex(str(value)))
        else:
            args.append(value)
    return struct.pack(fmt, *args)


def main() -> None:
    here = Path(__file__).parent
    for template_id, schema_id, name, fmt in FORMATS:
        values = values_for(template_id, schema_id, fmt)
        data = pack(fmt, values)
        assert len(data) == 60, name
        stem = f"struct-{template_id:02d}-{name}"
        (here / f"{stem}.hex").write_text(data.hex() + "\n", encoding="ascii")
        doc = {"template_id": template_id, "name": name, "format": fmt, "values": values}
        (here / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="ascii")


if __name__ == "__main__":
    main()

"""A standard-library reader of SBE XML schemas and a small generic decoder/encoder.

Independent of qfix on purpose (no ``qfix`` import): everything it knows about a message
comes from the XML alone: the header composite, each field's block offset, its encoding
(``<type>``, single-member ``<composite>``, ``<enum>``, ``<set>``, char array), null values
and the enum/set tables. It covers what fixed-block schemas without groups or var data use,
which is all the qfix schemas (WIRE.md §7) contain; anything else raises ``NotImplementedError``.

Decoded values are "semantic": ``None`` for a null, the validValue name for an enum, the
sorted choice names for a set, raw ``bytes`` for a char array, else an ``int``.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SBE_NS = "http://fixprotocol.io/2016/sbe"

#: struct code of each SBE primitive type (SBE 1.0 §2)
PRIMITIVE_FORMAT = {
    "char": "c",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float": "f",
    "double": "d",
}


@dataclass(frozen=True)
class Field:
    """One encoded field of a block (or a member of the header composite)."""

    name: str
    id: int | None  # FIX tag; None for header members
    offset: int  # block offset (header members: offset in the header)
    has_offset_attr: bool  # the XML gives the offset explicitly
    type_name: str  # the XML type the field references
    kind: str  # "int", "enum", "set" or "chars"
    primitive: str  # SBE primitive type of its bytes
    length: int  # array length (1 for scalars)
    null: int | None  # null value of an optional int, else None
    member: str | None  # the non-constant member name if typed by a composite
    codes: dict[str, int] | None  # enum: validValue name -> code (char: its ASCII code)
    bits: dict[str, int] | None  # set: choice name -> bit position

    @property
    def size(self) -> int:
        return struct.calcsize("<" + PRIMITIVE_FORMAT[self.primitive]) * self.length


@dataclass(frozen=True)
class Message:
    name: str
    id: int
    block_length: int
    semantic_type: str | None
    fields: tuple[Field, ...]  # in XML order


@dataclass(frozen=True)
class Schema:
    path: Path
    attributes: dict[str, str]  # root element attributes
    id: int
    version: int
    byte_order: str  # struct prefix, "<" or ">"
    header: tuple[Field, ...]
    messages: dict[int, Message]
    types: dict[str, ET.Element]  # every named type, enum, set and composite
    enums: dict[str, tuple[str, dict[str, int]]]  # name -> (encodingType, {name: code})
    sets: dict[str, tuple[str, dict[str, int]]]  # name -> (encodingType, {choice: bit})

    @property
    def header_size(self) -> int:
        return sum(f.size for f in self.header)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _code(encoding: str, text: str) -> int:
    text = text.strip()
    if encoding == "char":
        if len(text) != 1:
            raise ValueError(f"char validValue {text!r} is not one character")
        return ord(text)
    return int(text)


def _field(
    types: dict[str, ET.Element],
    name: str,
    fid: int | None,
    type_name: str,
    offset: int,
    has_offset: bool,
) -> Field:
    """Resolve ``type_name`` down to bytes: primitive, length, null, enum or set table."""
    if type_name in PRIMITIVE_FORMAT:
        return Field(name, fid, offset, has_offset, type_name, "int", type_name, 1, None, None, None, None)
    el = types[type_name]
    kind = _local(el.tag)
    member = None
    if kind == "composite":
        variable = [m for m in el if m.get("presence") != "constant"]
        if len(variable) != 1 or _local(variable[0].tag) != "type":
            raise NotImplementedError(f"composite {type_name}: only one non-constant member")
        el, member, kind = variable[0], variable[0].get("name"), "type"
    if kind == "type":
        primitive = el.get("primitiveType", "")
        length = int(el.get("length", "1"))
        if primitive == "char":
            return Field(name, fid, offset, has_offset, type_name, "chars", "char", length, None, member, None, None)
        if length != 1:
            raise NotImplementedError(f"{type_name}: arrays of {primitive}")
        null = el.get("nullValue") if el.get("presence") == "optional" else None
        return Field(
            name,
            fid,
            offset,
            has_offset,
            type_name,
            "int",
            primitive,
            1,
            None if null is None else int(null),
            member,
            None,
            None,
        )
    encoding = el.get("encodingType", "")
    if encoding not in PRIMITIVE_FORMAT:
        raise NotImplementedError(f"{type_name}: encodingType {encoding} is not a primitive")
    if kind == "enum":
        table = {v.get("name", ""): _code(encoding, v.text or "") for v in el}
        return Field(name, fid, offset, has_offset, type_name, "enum", encoding, 1, None, None, table, None)
    if kind == "set":
        bits = {c.get("name", ""): int((c.text or "").strip()) for c in el}
        return Field(name, fid, offset, has_offset, type_name, "set", encoding, 1, None, None, None, bits)
    raise NotImplementedError(f"{type_name}: <{kind}>")


def load(path: Path) -> Schema:
    """Parse one SBE XML schema file."""
    root = ET.parse(path).getroot()
    if root.tag != f"{{{SBE_NS}}}messageSchema":
        raise ValueError(f"{path}: root is {root.tag}")
    types: dict[str, ET.Element] = {}
    enums: dict[str, tuple[str, dict[str, int]]] = {}
    sets: dict[str, tuple[str, dict[str, int]]] = {}
    for types_el in root.iter("types"):
        for el in types_el:
            name = el.get("name", "")
            if name in types:
                raise ValueError(f"{path}: type {name} declared twice")
            types[name] = el
            encoding = el.get("encodingType", "")
            if _local(el.tag) == "enum":
                enums[name] = (encoding, {v.get("name", ""): _code(encoding, v.text or "") for v in el})
            elif _local(el.tag) == "set":
                sets[name] = (encoding, {c.get("name", ""): int((c.text or "").strip()) for c in el})
    header_el = types[root.get("headerType", "messageHeader")]
    header: list[Field] = []
    cursor = 0
    for m in header_el:
        f = _field(types, m.get("name", ""), None, m.get("primitiveType", ""), cursor, False)
        header.append(f)
        cursor += f.size
    messages: dict[int, Message] = {}
    for msg_el in root.findall(f"{{{SBE_NS}}}message"):
        fields: list[Field] = []
        cursor = 0
        for child in msg_el:
            if _local(child.tag) != "field":
                raise NotImplementedError(f"{path}: <{_local(child.tag)}> in a message")
            has_offset = child.get("offset") is not None
            offset = int(child.get("offset", cursor))
            f = _field(
                types, child.get("name", ""), int(child.get("id", "-1")), child.get("type", ""), offset, has_offset
            )
            fields.append(f)
            cursor = offset + f.size
        mid = int(msg_el.get("id", "-1"))
        if mid in messages:
            raise ValueError(f"{path}: message id {mid} declared twice")
        messages[mid] = Message(
            msg_el.get("name", ""),
            mid,
            int(msg_el.get("blockLength", cursor)),
            msg_el.get("semanticType"),
            tuple(fields),
        )
    byte_order = {"littleEndian": "<", "bigEndian": ">"}[root.get("byteOrder", "littleEndian")]
    return Schema(
        path,
        dict(root.attrib),
        int(root.get("id", "-1")),
        int(root.get("version", "0")),
        byte_order,
        tuple(header),
        messages,
        types,
        enums,
        sets,
    )


# --- generic decoder / encoder ---------------------------------------------------------


def to_semantic(f: Field, raw: Any) -> Any:
    """The semantic value of a raw field value (an int, or bytes for a char array)."""
    if f.kind == "chars":
        return bytes(raw)
    if f.kind == "enum":
        assert f.codes is not None
        names = [n for n, c in f.codes.items() if c == raw]
        if len(names) != 1:
            raise ValueError(f"{f.name}: value {raw} not in enum {f.type_name}")
        return names[0]
    if f.kind == "set":
        assert f.bits is not None
        known = sum(1 << b for b in f.bits.values())
        if raw & ~known:
            raise ValueError(f"{f.name}: bits {raw & ~known:#x} not in set {f.type_name}")
        return sorted((n for n, b in f.bits.items() if raw >> b & 1), key=f.bits.__getitem__)
    return None if raw == f.null else raw


def _read(schema: Schema, f: Field, buf: bytes, at: int) -> Any:
    if f.kind == "chars":
        return bytes(buf[at : at + f.length])
    fmt = "B" if f.primitive == "char" else PRIMITIVE_FORMAT[f.primitive]
    (raw,) = struct.unpack_from(schema.byte_order + fmt, buf, at)
    return to_semantic(f, raw)


def decode_header(schema: Schema, buf: bytes) -> dict[str, int]:
    return {f.name: _read(schema, f, buf, f.offset) for f in schema.header}


def decode(schema: Schema, buf: bytes) -> tuple[dict[str, int], str, dict[str, Any]]:
    """(header, message name, {field: value}) of one message, from the XML alone."""
    header = decode_header(schema, buf)
    if header["schemaId"] != schema.id or header["version"] > schema.version:
        raise ValueError(f"schema {header['schemaId']} v{header['version']} not {schema.id}")
    msg = schema.messages[header["templateId"]]
    if header["blockLength"] != msg.block_length:
        raise ValueError(f"blockLength {header['blockLength']} != {msg.block_length}")
    if len(buf) != schema.header_size + msg.block_length:
        raise ValueError(f"{len(buf)} bytes for {msg.name}")
    base = schema.header_size
    return header, msg.name, {f.name: _read(schema, f, buf, base + f.offset) for f in msg.fields}


def to_raw(f: Field, value: Any) -> Any:
    """Inverse of :func:`to_semantic`."""
    if f.kind == "chars":
        if not isinstance(value, bytes) or len(value) > f.length:
            raise ValueError(f"{f.name}: {value!r} is not up to {f.length} bytes")
        return value.ljust(f.length, b"\x00")
    if f.kind == "enum":
        assert f.codes is not None
        return f.codes[value]
    if f.kind == "set":
        assert f.bits is not None
        return sum(1 << f.bits[name] for name in set(value))
    if value is None:
        if f.null is None:
            raise ValueError(f"{f.name} is not optional")
        return f.null
    return value


def encode(schema: Schema, template_id: int, values: dict[str, Any]) -> bytes:
    """One message of ``template_id`` with ``values`` (semantic, as :func:`decode` returns)."""
    msg = schema.messages[template_id]
    if set(values) != {f.name for f in msg.fields}:
        raise ValueError(f"{msg.name}: fields {sorted(values)}")
    buf = bytearray(schema.header_size + msg.block_length)
    header = {"blockLength": msg.block_length, "templateId": msg.id, "schemaId": schema.id, "version": schema.version}
    for f in schema.header:
        struct.pack_into(schema.byte_order + PRIMITIVE_FORMAT[f.primitive], buf, f.offset, header[f.name])
    for f in msg.fields:
        at = schema.header_size + f.offset
        raw = to_raw(f, values[f.name])
        if f.kind == "chars":
            buf[at : at + f.length] = raw
        else:
            fmt = "B" if f.primitive == "char" else PRIMITIVE_FORMAT[f.primitive]
            struct.pack_into(schema.byte_order + fmt, buf, at, raw)
    return bytes(buf)

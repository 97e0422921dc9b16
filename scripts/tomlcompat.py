"""TOML for the project's scripts on every supported Python: the standard `tomllib` where there
is one (Python >= 3.11), otherwise a small parser of the subset that models/manifest.toml and
the config snippets use (Ubuntu 22.04 ships Python 3.10, which has no tomllib).

The subset: comments, [tables] and [[arrays of tables]] with dotted names, bare or quoted keys,
basic and literal strings, integers, floats, booleans, arrays of those (on one or several
lines) and inline tables on one line. Anything else is refused with its line number instead of being misread.

Use: `from tomlcompat import load, loads, TOMLDecodeError`.
"""

import re

try:
    from tomllib import TOMLDecodeError, load, loads  # noqa: F401  (re-exported)
except ModuleNotFoundError:

    class TOMLDecodeError(ValueError):
        """A document outside the supported subset, or not TOML at all."""

    _BARE = re.compile(r"[A-Za-z0-9_-]+")
    _INT = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)")
    _FLOAT = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)(\.[0-9](_?[0-9])*)?([eE][+-]?[0-9](_?[0-9])*)?")
    _NUMBER_END = re.compile(r"\s*(,|\]|\}|$)")
    _INLINE_KEY = re.compile(r'("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=\s*')

    def load(f):
        return loads(f.read().decode("utf-8"))

    def loads(text):
        root = {}
        table = root
        # Tables opened by a [header] (a second one is an error) and the arrays that
        # [[headers]] build (a plain array of the same name is not one).
        headers, tables_arrays = set(), set()
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            number, line = i + 1, _strip_comment(lines[i]).strip()
            i += 1
            if not line:
                continue
            try:
                if line.startswith("[["):
                    if not line.endswith("]]"):
                        raise TOMLDecodeError("unclosed [[table]]")
                    *parents, last = _keys(line[2:-2])
                    holder = _descend(root, parents)
                    array = holder.setdefault(last, [])
                    if not isinstance(array, list) or (array and id(array) not in tables_arrays):
                        raise TOMLDecodeError(f"{last!r} is not an array of tables")
                    tables_arrays.add(id(array))
                    table = {}
                    array.append(table)
                elif line.startswith("["):
                    if not line.endswith("]"):
                        raise TOMLDecodeError("unclosed [table]")
                    keys = _keys(line[1:-1])
                    *parents, last = keys
                    if isinstance(_descend(root, parents).get(last), list):
                        raise TOMLDecodeError(f"{last!r} is an array, not a table")
                    table = _descend(root, keys)
                    if id(table) in headers:
                        raise TOMLDecodeError(f"table {'.'.join(keys)!r} defined twice")
                    headers.add(id(table))
                else:
                    key, sep, rest = _split_key(line)
                    rest = rest.strip()
                    if not sep:
                        raise TOMLDecodeError("expected `key = value`")
                    # An array may go on over the next lines until its brackets close.
                    while rest.startswith("[") and not _closed(rest) and i < len(lines):
                        rest += " " + _strip_comment(lines[i]).strip()
                        i += 1
                    *parents, last = key
                    holder = _descend(table, parents)
                    if last in holder:
                        raise TOMLDecodeError(f"key {last!r} defined twice")
                    value, tail = _value(rest)
                    if tail.strip():
                        raise TOMLDecodeError(f"unexpected {tail.strip()!r} after the value")
                    holder[last] = value
            except (TOMLDecodeError, IndexError, OverflowError) as e:
                raise TOMLDecodeError(f"line {number}: {e}") from None
        return root

    def _outside_strings(text):
        """(index, character) of each character of `text` outside its quoted strings."""
        quote, escaped = None, False
        for n, ch in enumerate(text):
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\" and quote == '"':
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            else:
                yield n, ch

    def _strip_comment(line):
        """The line without a `#` comment (a `#` inside a string stays)."""
        for n, ch in _outside_strings(line):
            if ch == "#":
                return line[:n]
        return line

    def _closed(text):
        """Whether the brackets outside strings in `text` balance."""
        depth = 0
        for _, ch in _outside_strings(text):
            depth += {"[": 1, "]": -1}.get(ch, 0)
        return depth == 0

    def _descend(table, keys):
        for key in keys:
            table = table.setdefault(key, {})
            if isinstance(table, list):
                table = table[-1]
            if not isinstance(table, dict):
                raise TOMLDecodeError(f"{key!r} is a value, not a table")
        return table

    def _keys(text):
        keys, rest = [], text.strip()
        while True:
            key, rest = _one_key(rest)
            keys.append(key)
            rest = rest.strip()
            if not rest:
                return keys
            if not rest.startswith("."):
                raise TOMLDecodeError(f"bad key {text!r}")
            rest = rest[1:].strip()

    def _split_key(line):
        keys, rest = [], line
        while True:
            key, rest = _one_key(rest.strip())
            keys.append(key)
            rest = rest.strip()
            if rest.startswith("."):
                rest = rest[1:]
                continue
            if rest.startswith("="):
                return keys, "=", rest[1:]
            return keys, "", rest

    def _one_key(text):
        if text[:1] in "\"'":
            value, rest = _value(text)
            return value, rest
        m = _BARE.match(text)
        if not m:
            raise TOMLDecodeError(f"bad key at {text[:20]!r}")
        return m.group(0), text[m.end() :]

    _ESCAPE = re.compile(r'\\(?:([btnfr"\\])|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.?))')
    _SIMPLE = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}

    def _unescape(body):
        """A basic string's escapes, decoded in one pass; any other escape is refused."""

        def one(m):
            simple, short, long, other = m.groups()
            if simple:
                return _SIMPLE[simple]
            if other is not None:
                raise TOMLDecodeError(f"bad escape \\{other}")
            code = int(short or long, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise TOMLDecodeError(f"bad code point U+{code:X}")
            return chr(code)

        if any(ord(c) < 0x20 and c != "\t" for c in body):
            raise TOMLDecodeError("control character in a string")
        return _ESCAPE.sub(one, body)

    def _value(text):
        """Parses one value at the start of `text`; returns it and what follows."""
        if text.startswith('"'):
            if text.startswith('"""'):
                raise TOMLDecodeError("multi-line strings are not supported here")
            end, escaped = 1, False
            while end < len(text):
                ch = text[end]
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    break
                end += 1
            else:
                raise TOMLDecodeError("unclosed string")
            return _unescape(text[1:end]), text[end + 1 :]
        if text.startswith("'"):
            if text.startswith("'''"):
                raise TOMLDecodeError("multi-line strings are not supported here")
            end = text.find("'", 1)
            if end < 0:
                raise TOMLDecodeError("unclosed string")
            return text[1:end], text[end + 1 :]
        if text.startswith("["):
            items, rest = [], text[1:].strip()
            while not rest.startswith("]"):
                item, rest = _value(rest)
                items.append(item)
                rest = rest.strip()
                if rest.startswith(","):
                    rest = rest[1:].strip()
                elif not rest.startswith("]"):
                    raise TOMLDecodeError("expected `,` or `]` in an array")
            return items, rest[1:]
        if text.startswith("{"):
            table, rest = {}, text[1:].strip()
            while not rest.startswith("}"):
                m = _INLINE_KEY.match(rest)
                if not m:
                    raise TOMLDecodeError("expected `key =` in an inline table")
                key = m.group(1)
                key = _unescape(key[1:-1]) if key.startswith('"') else key
                if key in table:
                    raise TOMLDecodeError(f"key {key!r} twice in an inline table")
                table[key], rest = _value(rest[m.end() :])
                rest = rest.strip()
                if rest.startswith(","):
                    rest = rest[1:].strip()
                    if rest.startswith("}"):
                        raise TOMLDecodeError("a trailing `,` in an inline table")
                elif not rest.startswith("}"):
                    raise TOMLDecodeError("expected `,` or `}` in an inline table")
            return table, rest[1:]
        for word, value in (("true", True), ("false", False)):
            if re.match(word + r"\b", text):
                return value, text[len(word) :]
        m = _FLOAT.match(text)
        if m and m.group(0) and _NUMBER_END.match(text, m.end()):
            literal = m.group(0).replace("_", "")
            if _INT.fullmatch(m.group(0)):
                return int(literal), text[m.end() :]
            return float(literal), text[m.end() :]
        raise TOMLDecodeError(f"unsupported value {text[:30]!r}")

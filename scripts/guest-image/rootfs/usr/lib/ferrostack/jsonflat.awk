# jsonflat.awk: flatten one JSON document into "path<TAB>value" lines, one per
# scalar, so shell code can read metadata without jq or python.
#   {"a": {"b": [1, "x"]}}  ->  a.b.0<TAB>1  and  a.b.1<TAB>x
# Strings are unescaped (\uXXXX becomes UTF-8). Control characters inside
# values (the trailing "\n" Nova puts after each public key) become spaces and
# are trimmed, so every value fits on its line. null prints as an empty value.
# Malformed input prints "jsonflat: error at offset N" to stderr and exits 1.
# Written for busybox awk (no gawk extensions); also runs under mawk/gawk.

BEGIN { doc = "" }
{ doc = doc $0 "\n" }
END {
    n = length(doc); pos = 1
    hex = "0123456789abcdef"
    skip_ws()
    if (!parse_value("")) fail()
    skip_ws()
    if (pos <= n) fail()
    exit 0
}

function fail() {
    print "jsonflat: error at offset " pos > "/dev/stderr"
    exit 1
}

function skip_ws(    c) {
    while (pos <= n) {
        c = substr(doc, pos, 1)
        if (c != " " && c != "\t" && c != "\n" && c != "\r") break
        pos++
    }
}

function join(path, key) { return path == "" ? key : path "." key }

function emit(path, v) {
    gsub(/[\001-\037]/, " ", v)
    sub(/^ +/, "", v); sub(/ +$/, "", v)
    print path "\t" v
}

# Each parse_* returns 1 on success and leaves pos after the value.
function parse_value(path,    c) {
    c = substr(doc, pos, 1)
    if (c == "{") return parse_object(path)
    if (c == "[") return parse_array(path)
    if (c == "\"") { if (!parse_string()) return 0; emit(path, str); return 1 }
    if (substr(doc, pos, 4) == "true") { pos += 4; emit(path, "true"); return 1 }
    if (substr(doc, pos, 5) == "false") { pos += 5; emit(path, "false"); return 1 }
    if (substr(doc, pos, 4) == "null") { pos += 4; emit(path, ""); return 1 }
    if (match(substr(doc, pos), /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
        emit(path, substr(doc, pos, RLENGTH)); pos += RLENGTH; return 1
    }
    return 0
}

function parse_object(path,    key) {
    pos++; skip_ws()
    if (substr(doc, pos, 1) == "}") { pos++; return 1 }
    while (1) {
        if (substr(doc, pos, 1) != "\"" || !parse_string()) return 0
        key = str; skip_ws()
        if (substr(doc, pos, 1) != ":") return 0
        pos++; skip_ws()
        if (!parse_value(join(path, key))) return 0
        skip_ws()
        if (substr(doc, pos, 1) == ",") { pos++; skip_ws(); continue }
        if (substr(doc, pos, 1) == "}") { pos++; return 1 }
        return 0
    }
}

function parse_array(path,    i) {
    pos++; skip_ws()
    if (substr(doc, pos, 1) == "]") { pos++; return 1 }
    for (i = 0; ; i++) {
        if (!parse_value(join(path, i))) return 0
        skip_ws()
        if (substr(doc, pos, 1) == ",") { pos++; skip_ws(); continue }
        if (substr(doc, pos, 1) == "]") { pos++; return 1 }
        return 0
    }
}

# Sets the global "str" to the decoded string.
function parse_string(    c, e, cp, lo) {
    str = ""; pos++
    while (pos <= n) {
        c = substr(doc, pos, 1)
        if (c == "\"") { pos++; return 1 }
        if (c != "\\") {
            # copy a run of plain characters at once
            match(substr(doc, pos), /^[^"\\]+/)
            str = str substr(doc, pos, RLENGTH); pos += RLENGTH
            continue
        }
        e = substr(doc, pos + 1, 1); pos += 2
        if (e == "n" || e == "r" || e == "t" || e == "b" || e == "f") str = str " "
        else if (e == "\"" || e == "\\" || e == "/") str = str e
        else if (e == "u") {
            cp = hexval(substr(doc, pos, 4)); pos += 4
            if (cp < 0) return 0
            # a surrogate pair encodes one code point above U+FFFF
            if (cp >= 55296 && cp < 56320 && substr(doc, pos, 2) == "\\u") {
                lo = hexval(substr(doc, pos + 2, 4))
                if (lo >= 56320 && lo < 57344) {
                    cp = 65536 + (cp - 55296) * 1024 + (lo - 56320); pos += 6
                }
            }
            str = str utf8(cp)
        } else return 0
    }
    return 0
}

function hexval(s,    i, d, v) {
    if (length(s) != 4) return -1
    v = 0
    for (i = 1; i <= 4; i++) {
        d = index(hex, tolower(substr(s, i, 1)))
        if (d == 0) return -1
        v = v * 16 + d - 1
    }
    return v
}

function utf8(cp) {
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}

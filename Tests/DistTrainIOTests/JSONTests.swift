import Testing
@testable import DistTrainIO

// disttrain's own JSON parser and printer (RFC 8259): values, escapes, numbers, key order,
// and the byte offsets of syntax errors.

@Suite("JSON: parsing and printing")
struct JSONTests {
    @Test("scalars, arrays and objects parse to the expected values")
    func parsesValues() throws {
        #expect(try JSON.parse("null") == .null)
        #expect(try JSON.parse(" true ") == .bool(true))
        #expect(try JSON.parse("false") == .bool(false))
        #expect(try JSON.parse("-0.5e2") == .number(-50))
        #expect(try JSON.parse("12345678901234") == .number(12_345_678_901_234))
        #expect(try JSON.parse("1E-3") == .number(0.001))
        #expect(try JSON.parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"") == .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        #expect(try JSON.parse("\"\\u00e9\\u4e2d\"") == .string("é中"))
        #expect(try JSON.parse("\"\\ud83d\\ude00\"") == .string("😀"))         // surrogate pair
        #expect(try JSON.parse("\"é中😀\"") == .string("é中😀"))                  // raw UTF-8
        #expect(try JSON.parse("[]") == .array([]))
        #expect(try JSON.parse("{}") == .object([]))
        #expect(try JSON.parse("[1, [2, {\"a\": null}], \"x\"]")
                == .array([1, .array([2, .object([("a", .null)])]), "x"]))
        let object = try JSON.parse("{\"b\": 1, \"a\": {\"c\": [true]}}")
        #expect(object["b"] == .number(1))
        #expect(object["a"]?["c"] == .array([true]))
        #expect(object["missing"] == nil)
        #expect(JSON.number(3)["b"] == nil)
    }

    @Test("object keys keep their order, and order matters for equality")
    func keyOrder() throws {
        let j = try JSON.parse("{\"z\": 1, \"a\": 2, \"m\": 3}")
        guard case let .object(pairs) = j else { Issue.record("not an object: \(j)"); return }
        #expect(pairs.map(\.0) == ["z", "a", "m"])
        #expect(j.serialized == "{\"z\":1,\"a\":2,\"m\":3}")
        #expect(j != (try JSON.parse("{\"a\": 2, \"z\": 1, \"m\": 3}")))
    }

    @Test("printing: integers without a fraction, other numbers round-trip, strings escaped")
    func prints() throws {
        #expect(JSON.number(3).serialized == "3")
        #expect(JSON.number(-0.0).serialized == "0")
        #expect(JSON.number(.infinity).serialized == "null")
        #expect(JSON.number(.nan).serialized == "null")
        for x in [0.1, -2.5e-8, 1.0 / 3, 1e15, -1e15 - 2, 6.02214076e23, 1e300, 5e-324, 93.720001] {
            let text = JSON.number(x).serialized
            #expect(try JSON.parse(text) == .number(x), "\(x) printed as \(text)")
        }
        #expect(JSON.string("q\"b\\n\n\t\r\u{1}\u{1F}é").serialized == "\"q\\\"b\\\\n\\n\\t\\r\\u0001\\u001fé\"")
        let nested: JSON = .object([("a", .array([1, 2])), ("b", .object([("c", .null)])), ("d", .array([]))])
        #expect(nested.serialized == "{\"a\":[1,2],\"b\":{\"c\":null},\"d\":[]}")
        #expect(nested.pretty == "{\n  \"a\": [1, 2],\n  \"b\": {\n    \"c\": null\n  },\n  \"d\": []\n}\n")
    }

    @Test("parse(print(x)) == x, compact and pretty")
    func roundTrip() throws {
        let value: JSON = .object([
            ("name", "disttrain \"vae\"\n"), ("n", 60000), ("lr", 0.001), ("neg", -1.25e-7),
            ("flags", .array([true, false, .null])), ("empty", .object([])),
            ("deep", .array([.array([.object([("k", .array([1, "two", 3.5]))])])])),
            ("unicode", "\u{0}\u{7F}ü😀"),
        ])
        #expect(try JSON.parse(value.serialized) == value)
        #expect(try JSON.parse(value.pretty) == value)
        #expect(try JSON.parse(bytes: Array(value.serialized.utf8)) == value)
    }

    @Test("syntax errors name the byte offset and the reason", arguments: [
        ("", 0, "end of input"),
        ("[1, 2", 5, "end of input"),
        ("{\"a\": 1} x", 9, "after the document"),
        ("{\"a\": 1, \"a\": 2}", 14, "duplicate field \"a\""),
        ("{a: 1}", 1, "field name"),
        ("[1 2]", 3, "expected ','"),
        ("\"tab\there\"", 5, "control character"),
        ("\"\\ud83d\"", 7, "lone surrogate"),
        ("\"\\x\"", 3, "bad escape"),
        ("1.", 2, "after '.'"),
        ("1e", 2, "exponent"),
        ("1e999", 5, "out of range"),
        ("tru", 0, "unexpected character"),
        ("-", 0, "unexpected character"),
    ])
    func syntaxErrors(text: String, offset: Int, reason: String) {
        let error = #expect(throws: JSONSyntaxError.self) { try JSON.parse(text) }
        #expect(error?.offset == offset, "\(text.debugDescription): \(String(describing: error))")
        #expect(error?.reason.contains(reason) == true, "\(text.debugDescription): \(String(describing: error))")
        #expect(error.map { "\($0)".hasPrefix("invalid JSON at byte \(offset): ") } == true)
    }

    @Test("nesting deeper than 256 levels is refused, 255 is fine")
    func depthLimit() throws {
        let ok = String(repeating: "[", count: 255) + String(repeating: "]", count: 255)
        #expect(throws: Never.self) { try JSON.parse(ok) }
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let error = #expect(throws: JSONSyntaxError.self) { try JSON.parse(deep) }
        #expect(error?.reason.contains("too deep") == true)
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(bytes: [0x22, 0xC3, 0x28, 0x22]) }
    }
}

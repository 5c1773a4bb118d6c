import Foundation

/// JSON, gzip and time stamps, with nothing but Foundation. A body is built from dictionaries,
/// arrays, strings, numbers, booleans and nulls, and an answer is read back into the same
/// (JSONSerialization's NSDictionary, NSArray, NSString, NSNumber and NSNull).
public enum Json {
    /// Sorted keys, so the same body is always the same bytes; "/" written as "/", not "\/".
    /// Apple documents `.sortedKeys` as "lexicographic order"; its comparison is not plain
    /// code-point order in every case (Foundation compares keys case-insensitively and with
    /// numbers by value), which only matters for keys that differ in case or by a digit run.
    static let writingOptions: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]

    public static func encode(_ value: [String: Any]) -> String {
        let plain = jsonValue(value)
        guard JSONSerialization.isValidJSONObject(plain),
              let data = try? JSONSerialization.data(withJSONObject: plain, options: writingOptions) else {
            // Not reached: jsonValue leaves only what JSONSerialization accepts. Checked anyway,
            // because JSONSerialization raises an Objective-C exception (a crash) on anything else.
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Turns an app's value into one JSONSerialization accepts: nil and NaN or infinity become
    /// null (JSON has no NaN: send null rather than a body the server refuses), any other
    /// value its description, as Kotlin's Json.encode does with toString().
    public static func jsonValue(_ value: Any?) -> Any {
        guard let value = value else { return NSNull() }
        // An Optional inside an Any (["x": someOptional]): unwrap it; nil is JSON's null.
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let inner = mirror.children.first else { return NSNull() }
            return jsonValue(inner.value)
        }
        switch value {
        case is NSNull:
            return NSNull()
        case let text as String:
            return text
        case let number as NSNumber:
            // Swift's Bool, Int and Double arrive here bridged; a Bool stays true/false.
            let double = number.doubleValue
            return double.isNaN || double.isInfinite ? NSNull() : number
        case let map as [String: Any]:
            var result = [String: Any]()
            for (key, item) in map {
                result[key] = jsonValue(item)
            }
            return result
        case let map as [AnyHashable: Any]:
            var result = [String: Any]()
            for (key, item) in map {
                result[String(describing: key.base)] = jsonValue(item)
            }
            return result
        case let list as [Any]:
            return list.map { jsonValue($0) }
        default:
            return String(describing: value)
        }
    }

    /// A value for a dictionary that JSON writes as null when it is nil.
    public static func orNull(_ value: Any?) -> Any {
        guard let value = value else { return NSNull() }
        return value
    }

    /// Parses a JSON text: objects become [String: Any], arrays [Any], numbers NSNumber, null NSNull.
    public static func decode(_ text: String) throws -> Any {
        return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// gzip (RFC 1952) around Foundation's raw DEFLATE. Foundation has no gzip writer, but
    /// `NSData.compressed(using: .zlib)` (iOS 13+;
    /// https://developer.apple.com/documentation/foundation/nsdata/compressionalgorithm/zlib)
    /// writes raw DEFLATE: Apple's page for the same zlib algorithm in the Compression library
    /// (https://developer.apple.com/documentation/compression/algorithm/zlib) says "The encoded
    /// format is the raw DEFLATE format as described in IETF RFC 1951", equivalent to zlib's
    /// deflateInit2 with windowBits -15: no zlib header, no Adler-32. So the
    /// gzip member is framed here: a 10-byte header, the deflate bytes, CRC-32 and ISIZE.
    public static func gzip(_ text: String) throws -> Data {
        let raw = Data(text.utf8)
        let deflated = try (raw as NSData).compressed(using: .zlib) as Data
        // ID1 ID2, CM 8 (deflate), FLG 0 (no name, no extra, no comment), MTIME 0, XFL 0, OS 255.
        var out = Data([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff])
        out.append(deflated)
        appendLittleEndian(crc32(raw), to: &out)
        appendLittleEndian(UInt32(truncatingIfNeeded: raw.count), to: &out) // ISIZE: length mod 2^32
        return out
    }

    /// CRC-32 as gzip uses it (IEEE 802.3, reflected polynomial 0xEDB88320).
    public static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let crcTable: [UInt32] = (0..<256).map { index -> UInt32 in
        var c = UInt32(index)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1)
        }
        return c
    }

    private static func appendLittleEndian(_ value: UInt32, to data: inout Data) {
        data.append(UInt8(truncatingIfNeeded: value))
        data.append(UInt8(truncatingIfNeeded: value >> 8))
        data.append(UInt8(truncatingIfNeeded: value >> 16))
        data.append(UInt8(truncatingIfNeeded: value >> 24))
    }

    /// Milliseconds since 1970, the client's clock (Kotlin's System.currentTimeMillis).
    public static func now() -> Int64 {
        return Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Whole seconds only: the milliseconds are written below from the integer, so no
    /// floating-point rounding of a Date can turn .120 into .119.
    private static let seconds: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime] // "2026-11-27T07:02:27Z" in UTC
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        return formatter
    }()

    /// RFC 3339 in UTC with milliseconds, always three digits: "2026-11-27T07:02:27.120Z".
    public static func timestamp(_ epochMillis: Int64) -> String {
        var wholeSeconds = epochMillis / 1000
        var millis = epochMillis % 1000
        if millis < 0 { // before 1970: floor, as Kotlin's Instant does
            wholeSeconds -= 1
            millis += 1000
        }
        var text = seconds.string(from: Date(timeIntervalSince1970: TimeInterval(wholeSeconds)))
        if text.hasSuffix("Z") {
            text.removeLast()
        }
        return text + String(format: ".%03dZ", Int32(millis))
    }
}

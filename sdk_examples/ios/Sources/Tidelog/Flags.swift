import Foundation

/// Feature flags: `for_user` fetched on start, identify and reset, never queued; its answer kept
/// in `<storage>/flags.json` and served from there offline and on a cold start; the config's
/// bootstrap values before any answer. Each flag read reports one `$feature_flag_called` per
/// user, flag and value, remembered in `<storage>/exposures.txt` across cold starts.
public final class Flags {
    private let config: TidelogConfig
    private let transport: Transport
    /// Queues the exposure event: the facade's track().
    private let expose: (String, Any) -> Void
    private let cacheFile: URL
    private let exposuresFile: URL
    private let lock = NSLock()

    /// key → ["enabled", "variant", "payload"] (NSNull for null), as the last answer gave them; nil before any.
    private var cached: [String: [String: Any]]?
    private var exposed = Set<String>()

    public init(config: TidelogConfig, transport: Transport, expose: @escaping (_ flag: String, _ value: Any) -> Void) {
        self.config = config
        self.transport = transport
        self.expose = expose
        self.cacheFile = config.storage.appendingPathComponent("flags.json")
        self.exposuresFile = config.storage.appendingPathComponent("exposures.txt")
        if let data = try? Data(contentsOf: cacheFile) { // absent: never fetched on this install
            if let saved = (try? Json.decode(String(decoding: data, as: UTF8.self))) as? [String: Any] {
                cached = saved["flags"] as? [String: [String: Any]]
            } else {
                config.log("flags.json unreadable: bootstrap values until the next answer")
            }
        }
        if let text = try? String(contentsOf: exposuresFile, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                exposed.insert(String(line))
            }
        }
    }

    /// Asks the server; true when the cache now holds its answer. Runs on the client's queue.
    @discardableResult
    public func reload(distinctId: String) -> Bool {
        let body = Json.encode(["distinct_id": distinctId, "person_properties": config.personProperties])
        let headers: [(String, String)] = [
            ("Authorization", "Bearer \(config.apiKey)"),
            ("Content-Type", "application/json"),
            ("User-Agent", Sender.userAgent),
        ]
        let answer: Answer
        do {
            answer = try transport.send(
                method: "POST", url: config.baseUrl + "public/feature-flags/for_user/", body: Data(body.utf8), headers: headers
            )
        } catch {
            config.log("flags not fetched (\(error.localizedDescription)): serving the cache")
            return false
        }
        if answer.status != 200 {
            config.log("flags not fetched (\(answer.status) \(String(answer.body.prefix(200)))): serving the cache")
            return false
        }
        guard let object = (try? Json.decode(answer.body)) as? [String: Any],
              let all = object["flags"] as? [String: Any] else {
            config.log("flags answer unreadable: serving the cache")
            return false
        }
        var flags = [String: [String: Any]]()
        for (key, value) in all {
            guard let flag = value as? [String: Any] else {
                config.log("flags answer unreadable (flag \(key)): serving the cache")
                return false
            }
            flags[key] = [
                "enabled": Json.orNull(flag["enabled"]),
                "variant": Json.orNull(flag["variant"]),
                "payload": Json.orNull(flag["payload"]),
            ]
        }
        lock.lock()
        cached = flags
        lock.unlock()
        try? Data(Json.encode(["distinct_id": distinctId, "flags": flags]).utf8).write(to: cacheFile, options: .atomic)
        return true
    }

    /// The flag's value: its variant, else whether it is on; nil for a flag nobody knows of.
    public func value(_ key: String, distinctId: String) -> Any? {
        lock.lock()
        let flags = cached
        lock.unlock()
        let value: Any?
        if let flags = flags {
            guard let flag = flags[key] else {
                return nil
            }
            if let variant = flag["variant"], !(variant is NSNull) {
                value = variant
            } else {
                value = (flag["enabled"] as? Bool) == true
            }
        } else {
            value = config.bootstrapFlags[key]
        }
        if let value = value {
            recordExposure(distinctId: distinctId, key: key, value: value)
        }
        return value
    }

    public func payload(_ key: String) -> Any? {
        lock.lock()
        defer { lock.unlock() }
        guard let payload = cached?[key]?["payload"], !(payload is NSNull) else {
            return nil
        }
        return payload
    }

    /// Logged out: the next user's flags and exposures start afresh.
    public func forget() {
        lock.lock()
        defer { lock.unlock() }
        cached = nil
        try? FileManager.default.removeItem(at: cacheFile)
        exposed.removeAll()
        try? FileManager.default.removeItem(at: exposuresFile)
    }

    private func recordExposure(distinctId: String, key: String, value: Any) {
        lock.lock()
        defer { lock.unlock() }
        let line = "\(distinctId)\t\(key)\t\(value)"
        if !exposed.insert(line).inserted {
            return
        }
        expose(key, value)
        appendExposure(line + "\n")
    }

    private func appendExposure(_ text: String) {
        let data = Data(text.utf8)
        if !FileManager.default.fileExists(atPath: exposuresFile.path) {
            FileManager.default.createFile(atPath: exposuresFile.path, contents: data)
            return
        }
        do {
            let handle = try FileHandle(forWritingTo: exposuresFile)
            defer { try? handle.close() }
            _ = try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            config.log("exposures.txt not written (\(error.localizedDescription))")
        }
    }
}

import Foundation

/// Sessions as the app's lifecycle makes them: one starts when the app comes to the foreground
/// with none, or after sessionTimeoutSeconds in the background. The old one's end is queued then,
/// stamped with when the app went to the background (a phone runs no timer in the background).
/// Kept in `<storage>/session.json`, so a cold start after the OS killed the app resumes it.
public final class Sessions {
    private let config: TidelogConfig
    private let queue: EventQueue
    private let clock: () -> Int64
    /// The distinct_id and device fields every session request carries.
    private let identity: () -> [String: Any]
    private let file: URL
    private let lock = NSLock()

    private var currentId: String?
    private var backgroundedAt: Int64?
    private var lastActivityAt: Int64 = 0
    private var savedActivityAt: Int64 = 0

    public init(config: TidelogConfig, queue: EventQueue, clock: @escaping () -> Int64, identity: @escaping () -> [String: Any]) {
        self.config = config
        self.queue = queue
        self.clock = clock
        self.identity = identity
        self.file = config.storage.appendingPathComponent("session.json")
        guard let data = try? Data(contentsOf: file) else {
            return // a fresh install
        }
        guard let saved = (try? Json.decode(String(decoding: data, as: UTF8.self))) as? [String: Any] else {
            config.log("session.json unreadable: a new session at the next foreground")
            return
        }
        currentId = saved["session_id"] as? String
        backgroundedAt = (saved["backgrounded_at"] as? NSNumber)?.int64Value
        lastActivityAt = (saved["last_activity_at"] as? NSNumber)?.int64Value ?? 0
    }

    public var sessionId: String? {
        lock.lock()
        defer { lock.unlock() }
        return currentId
    }

    public func onForeground() {
        lock.lock()
        defer { lock.unlock() }
        let now = clock()
        // Killed in the foreground (a crash, the OS): the last activity stands for the background.
        let idleSince = backgroundedAt ?? lastActivityAt
        if let current = currentId, now - idleSince >= Int64(config.sessionTimeoutSeconds) * 1000 {
            end(current, at: idleSince)
            start(at: now)
        } else if currentId == nil {
            start(at: now)
        }
        backgroundedAt = nil
        lastActivityAt = now
        save()
    }

    public func onBackground() {
        lock.lock()
        defer { lock.unlock() }
        backgroundedAt = clock()
        save()
    }

    /// An event was tracked: the session is alive. Saved at most every 10 s (a crash loses less).
    public func touch() {
        lock.lock()
        defer { lock.unlock() }
        lastActivityAt = clock()
        if lastActivityAt - savedActivityAt >= 10_000 {
            save()
        }
    }

    /// Log out: the session ends now under the old identity, and a new one starts under the new.
    public func restart(switchIdentity: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        let now = clock()
        if let current = currentId {
            end(current, at: now)
        }
        switchIdentity()
        start(at: now)
        save()
    }

    private func start(at time: Int64) {
        let id = UUID().uuidString.lowercased() // uuidString is upper case; Kotlin's are lower
        var body = identity()
        body["session_id"] = id
        body["timestamp"] = Json.timestamp(time)
        do {
            try queue.add(kind: EventQueue.sessionStart, body: Json.encode(body))
        } catch {
            config.log("session start not queued (\(error.localizedDescription))")
            return
        }
        currentId = id
        config.log("session \(id) started")
    }

    private func end(_ id: String, at time: Int64) {
        var body = identity()
        body["timestamp"] = Json.timestamp(time)
        do {
            try queue.add(kind: EventQueue.sessionEnd + " " + id, body: Json.encode(body))
        } catch {
            config.log("session \(id) end not queued (\(error.localizedDescription))")
            return
        }
        config.log("session \(id) ended at \(Json.timestamp(time))")
    }

    private func save() {
        let state: [String: Any] = [
            "session_id": Json.orNull(currentId),
            "backgrounded_at": Json.orNull(backgroundedAt),
            "last_activity_at": lastActivityAt,
        ]
        // .atomic: written to an auxiliary file, then put in place of session.json.
        try? Data(Json.encode(state).utf8).write(to: file, options: .atomic)
        savedActivityAt = lastActivityAt
    }
}

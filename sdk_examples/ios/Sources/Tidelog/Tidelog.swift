import Foundation

/// What an app calls. `track` and the rest write to the durable queue on the caller's thread,
/// so what they returned from survives the process; sending, retrying and fetching flags happen
/// on one serial DispatchQueue of the client's own.
public final class Tidelog {
    public let config: TidelogConfig
    public let queue: EventQueue
    public let deviceId: String

    private let clock: () -> Int64
    private let worker: DispatchQueue
    private let identityFile: URL
    private let sender: Sender
    private let sessions: Sessions
    private let flags: Flags
    /// The flush every flushIntervalSeconds while the app runs.
    private let timer: DispatchSourceTimer
    /// Guards the fields below it.
    private let lock = NSLock()
    private var currentDistinctId: String
    private var flushPending = false
    private var retryPending = false
    private var retry: DispatchWorkItem?
    private var stopped = false
    /// One identity.json write at a time (Kotlin's @Synchronized saveIdentity).
    private let identityLock = NSLock()

    public init(
        config: TidelogConfig,
        transport: Transport = URLSessionTransport(),
        clock: @escaping () -> Int64 = Json.now,
        random: @escaping () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.config = config
        self.clock = clock
        // Built in locals first: nothing below reads a property of self before self is whole.
        let worker = DispatchQueue(label: "dev.tidelog.sdk", qos: .utility)
        self.worker = worker
        try? FileManager.default.createDirectory(at: config.storage, withIntermediateDirectories: true)
        let identityFile = config.storage.appendingPathComponent("identity.json")
        self.identityFile = identityFile
        let queue = EventQueue(storage: config.storage, maxSize: config.maxQueueSize, log: config.log)
        self.queue = queue
        sender = Sender(config: config, queue: queue, transport: transport, clock: clock, random: random)
        let saved = Tidelog.readIdentity(identityFile)
        currentDistinctId = saved["distinct_id"] as? String ?? Tidelog.newId()
        deviceId = saved["device_id"] as? String ?? Tidelog.newId()
        // Sessions and Flags call back into this client, which is not whole while they are made:
        // the closures read `client`, set to self once every stored property is.
        weak var client: Tidelog?
        sessions = Sessions(config: config, queue: queue, clock: clock, identity: {
            return client?.requestFields() ?? [:]
        })
        flags = Flags(config: config, transport: transport, expose: { key, value in
            _ = client?.track("$feature_flag_called", properties: ["$feature_flag": key, "$feature_flag_response": value])
        })
        timer = DispatchSource.makeTimerSource(queue: worker)
        client = self
        if saved.isEmpty {
            saveIdentity()
        }
        let interval = DispatchTimeInterval.seconds(config.flushIntervalSeconds)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            self?.flushNow()
        }
        timer.resume()
        let id = currentDistinctId
        worker.async { [weak self] in
            _ = self?.flags.reload(distinctId: id)
        }
        if queue.size > 0 {
            flush() // what an earlier process left
        }
    }

    deinit {
        timer.cancel()
    }

    public var distinctId: String {
        lock.lock()
        defer { lock.unlock() }
        return currentDistinctId
    }

    public var sessionId: String? {
        return sessions.sessionId
    }

    /// Queues an event; returns its uuid. On disk when this returns (unless the disk refused
    /// the write: then it is logged, and the event is lost).
    @discardableResult
    public func track(_ eventType: String, properties: [String: Any] = [:]) -> String {
        let uuid = Tidelog.newId()
        var event = requestFields()
        event["uuid"] = uuid
        event["event_type"] = eventType
        event["timestamp"] = Json.timestamp(clock())
        if let session = sessions.sessionId {
            event["session_id"] = session
        }
        if !properties.isEmpty {
            event["properties"] = properties
        }
        do {
            try queue.add(kind: EventQueue.event, body: Json.encode(event))
        } catch {
            config.log("\(eventType) not queued (\(error.localizedDescription))")
            return uuid
        }
        sessions.touch()
        if queue.size >= config.flushAt {
            flush()
        }
        return uuid
    }

    /// A screen view: the sessions read model counts `$screen` events as screens.
    @discardableResult
    public func screen(_ name: String, properties: [String: Any] = [:]) -> String {
        var all = properties
        all["$screen_name"] = name
        return track("$screen", properties: all)
    }

    /// The user logged in: the anonymous id's past becomes theirs, and their flags are fetched.
    public func identify(_ userId: String, set: [String: Any] = [:], setOnce: [String: Any] = [:]) {
        precondition(!userId.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "userId must not be blank")
        lock.lock()
        let previous = currentDistinctId
        if userId == previous && set.isEmpty && setOnce.isEmpty {
            lock.unlock()
            return
        }
        currentDistinctId = userId
        lock.unlock()
        saveIdentity()
        var properties = [String: Any]()
        if userId != previous {
            properties["$anon_distinct_id"] = previous
        }
        if !set.isEmpty {
            properties["$set"] = set
        }
        if !setOnce.isEmpty {
            properties["$set_once"] = setOnce
        }
        track("$identify", properties: properties)
        if userId != previous {
            onWorker { client in
                _ = client.flags.reload(distinctId: userId)
            }
        }
    }

    /// Log out: a new anonymous id and session; flags and exposures start afresh.
    public func reset() {
        flags.forget()
        sessions.restart {
            lock.lock()
            currentDistinctId = Tidelog.newId()
            lock.unlock()
            saveIdentity()
        }
        let id = distinctId
        onWorker { client in
            _ = client.flags.reload(distinctId: id)
        }
    }

    public func isEnabled(_ key: String) -> Bool {
        guard let value = flags.value(key, distinctId: distinctId) else {
            return false
        }
        if let on = value as? Bool {
            return on
        }
        return true // a variant's name
    }

    /// A multivariate flag's variant; nil when off, boolean or unknown.
    public func getVariant(_ key: String) -> String? {
        return flags.value(key, distinctId: distinctId) as? String
    }

    public func getPayload(_ key: String) -> Any? {
        return flags.payload(key)
    }

    /// Fetches the flags again now (the app may also call it on resume).
    public func reloadFlags() {
        let id = distinctId
        onWorker { client in
            _ = client.flags.reload(distinctId: id)
        }
    }

    public func onForeground() {
        sessions.onForeground()
    }

    /// Backgrounded: the session's clock starts, and what is queued goes now, while we may.
    public func onBackground() {
        sessions.onBackground()
        flush()
    }

    /// Sends what is queued, in the background.
    public func flush() {
        // One waiting flush is enough: a thousand track() calls offline make one, not a thousand.
        lock.lock()
        let start = !flushPending && !stopped
        if start {
            flushPending = true
        }
        lock.unlock()
        if start {
            worker.async { [weak self] in
                self?.flushNow()
            }
        }
    }

    /// Waits until the queue is empty; false after `timeout` seconds (offline, server away).
    /// Blocks the calling thread: not on the main thread.
    public func awaitEmpty(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while queue.size > 0 {
            if Date() >= deadline {
                return false
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }

    /// Stops the background work after one last flush attempt; the queue stays on disk.
    public func shutdown(timeout: TimeInterval = 5) {
        flush()
        lock.lock()
        stopped = true
        let pendingRetry = retry
        retry = nil
        lock.unlock()
        pendingRetry?.cancel()
        timer.cancel()
        // The serial queue runs this after the flush above: waiting for it waits for the flush.
        let done = DispatchSemaphore(value: 0)
        worker.async {
            done.signal()
        }
        _ = done.wait(timeout: .now() + timeout)
    }

    /// Runs `work` on the client's queue, unless the client was shut down.
    private func onWorker(_ work: @escaping (Tidelog) -> Void) {
        worker.async { [weak self] in
            guard let client = self else {
                return
            }
            client.lock.lock()
            let stopped = client.stopped
            client.lock.unlock()
            if !stopped {
                work(client)
            }
        }
    }

    /// On the worker queue only: the Sender is not shared.
    private func flushNow() {
        lock.lock()
        flushPending = false
        lock.unlock()
        let outcome = sender.flush()
        if outcome == .failed || outcome == .waiting {
            // Come back when the backoff ends, not only at the next 30 s tick.
            lock.lock()
            let schedule = !retryPending && !stopped
            if schedule {
                retryPending = true
            }
            lock.unlock()
            if schedule {
                let delay = max(0, sender.nextAttemptAt - clock())
                let item = DispatchWorkItem { [weak self] in
                    guard let client = self else {
                        return
                    }
                    client.lock.lock()
                    client.retryPending = false
                    client.retry = nil
                    client.lock.unlock()
                    client.flushNow()
                }
                lock.lock()
                retry = item
                lock.unlock()
                worker.asyncAfter(deadline: .now() + .milliseconds(Int(delay)), execute: item)
            }
        }
    }

    private func requestFields() -> [String: Any] {
        var fields: [String: Any] = ["distinct_id": distinctId, "device_id": deviceId]
        if let appVersion = config.appVersion {
            fields["app_version"] = appVersion
        }
        if let osName = config.osName {
            fields["os_name"] = osName
        }
        if let osVersion = config.osVersion {
            fields["os_version"] = osVersion
        }
        return fields
    }

    /// A random UUID as Tidelog's other clients write it: lower case (uuidString is upper case).
    private static func newId() -> String {
        return UUID().uuidString.lowercased()
    }

    /// identity.json, or nothing on a fresh install (an unreadable file counts as one).
    private static func readIdentity(_ file: URL) -> [String: Any] {
        guard let data = try? Data(contentsOf: file),
              let saved = (try? Json.decode(String(decoding: data, as: UTF8.self))) as? [String: Any] else {
            return [:]
        }
        return saved
    }

    private func saveIdentity() {
        identityLock.lock()
        defer { identityLock.unlock() }
        let body = Json.encode(["distinct_id": distinctId, "device_id": deviceId])
        // .atomic: written to an auxiliary file, then put in place of identity.json.
        try? Data(body.utf8).write(to: identityFile, options: .atomic)
    }
}

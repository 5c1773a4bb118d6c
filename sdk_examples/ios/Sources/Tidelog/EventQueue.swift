import Foundation

/// One queued request: what it is (its kind) and its JSON body.
public final class QueuedRequest {
    public let file: URL
    public let kind: String
    public let body: String

    init(file: URL, kind: String, body: String) {
        self.file = file
        self.kind = kind
        self.body = body
    }

    public var isEvent: Bool { return kind == EventQueue.event }
}

/// The durable queue: one file per request in `<storage>/queue/`, written to a temporary name
/// and renamed, so a killed process leaves the whole request or none of it. Names sort in queue
/// order (milliseconds, then a counter). The first line is the kind ("event", "session_start",
/// "session_end <id>"), the rest the body. A file is deleted only when the Sender says so.
/// Safe from several threads: the app's (add) and the sender's (peek, remove), one lock.
public final class EventQueue {
    public static let event = "event"
    public static let sessionStart = "session_start"
    public static let sessionEnd = "session_end"

    private let folder: URL
    private let maxSize: Int
    private let log: (String) -> Void
    private let lock = NSLock()
    /// The queue's file names, kept sorted (Kotlin's TreeSet).
    private var files = [String]()
    private var counter = 0
    private var lastMillis: Int64 = 0
    private var droppedCount = 0

    public init(storage: URL, maxSize: Int, log: @escaping (String) -> Void) {
        self.folder = storage.appendingPathComponent("queue", isDirectory: true)
        self.maxSize = maxSize
        self.log = log
        let manager = FileManager.default
        try? manager.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in (try? manager.contentsOfDirectory(atPath: folder.path)) ?? [] {
            if name.hasSuffix(".tmp") {
                // A write the process died in: the track() that made it never returned.
                try? manager.removeItem(at: folder.appendingPathComponent(name))
            } else if name.hasSuffix(".req") {
                files.append(name)
            }
        }
        files.sort()
    }

    /// Requests deleted to keep the queue within maxSize, since this process started.
    public var dropped: Int {
        lock.lock()
        defer { lock.unlock() }
        return droppedCount
    }

    public var size: Int {
        lock.lock()
        defer { lock.unlock() }
        return files.count
    }

    /// Writes the request to disk; throws when it could not (the disk is full).
    public func add(kind: String, body: String) throws {
        lock.lock()
        defer { lock.unlock() }
        let now = Json.now()
        // Names must keep growing even if the clock steps back (a user setting the time).
        let millis = now > lastMillis ? now : lastMillis
        counter = millis == lastMillis ? counter + 1 : 0
        lastMillis = millis
        let name = String(format: "%013lld-%06ld.req", millis, counter)
        let target = folder.appendingPathComponent(name)
        let temporary = folder.appendingPathComponent(name + ".tmp")
        try Data((kind + "\n" + body).utf8).write(to: temporary)
        do {
            try FileManager.default.moveItem(at: temporary, to: target) // rename(2) in one folder
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        insert(name)
        while files.count > maxSize {
            let oldest = files.removeFirst()
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(oldest))
            droppedCount += 1
            log("queue full (\(maxSize)): dropped the oldest request, \(droppedCount) so far")
        }
    }

    /// The first `count` requests, oldest first.
    public func peek(_ count: Int) -> [QueuedRequest] {
        lock.lock()
        defer { lock.unlock() }
        var result = [QueuedRequest]()
        var gone = Set<String>()
        for name in files {
            if result.count >= count {
                break
            }
            let file = folder.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: file) else {
                gone.insert(name) // deleted under us (only by hand): forget it
                continue
            }
            let text = String(decoding: data, as: UTF8.self)
            guard let newline = text.firstIndex(of: "\n") else {
                try? FileManager.default.removeItem(at: file) // cannot come from add(): not ours
                gone.insert(name)
                continue
            }
            let kind = String(text[..<newline])
            let body = String(text[text.index(after: newline)...])
            result.append(QueuedRequest(file: file, kind: kind, body: body))
        }
        if !gone.isEmpty {
            files.removeAll { gone.contains($0) }
        }
        return result
    }

    public func remove(_ requests: [QueuedRequest]) {
        lock.lock()
        defer { lock.unlock() }
        var names = Set<String>()
        for request in requests {
            try? FileManager.default.removeItem(at: request.file)
            names.insert(request.file.lastPathComponent)
        }
        files.removeAll { names.contains($0) }
    }

    /// Keeps `files` sorted: a new name is normally the greatest, unless the clock went back
    /// since an earlier process wrote its files.
    private func insert(_ name: String) {
        if let last = files.last, last > name {
            let index = files.firstIndex(where: { $0 > name }) ?? files.count
            files.insert(name, at: index)
        } else {
            files.append(name)
        }
    }
}

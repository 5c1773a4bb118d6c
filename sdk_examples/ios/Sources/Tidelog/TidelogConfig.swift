import Foundation

/// What an app tells the client: where Tidelog is, its project key, where to keep the queue, and
/// the rules' numbers (sdk_examples/README.md, "Defaults"). The device fields come from the
/// platform glue (TidelogUIKit.swift), or from the caller in a test.
public final class TidelogConfig {
    /// The command API's base URL: "https://tidelog.example.com", "http://127.0.0.1:8000".
    public let host: String
    /// The project's public key, "tlp_…".
    public let apiKey: String
    /// The folder the queue, the identity, the session and the flags live in.
    public let storage: URL
    public let appVersion: String?
    public let osName: String?
    public let osVersion: String?
    /// Events a batch, and the queue length that starts a flush.
    public let flushAt: Int
    public let flushIntervalSeconds: Int
    /// Requests kept on disk; past it the oldest are deleted (and counted).
    public let maxQueueSize: Int
    public let baseBackoffSeconds: Double
    public let maxBackoffSeconds: Double
    /// Background time that ends a session.
    public let sessionTimeoutSeconds: Int
    /// Flag answers before the first for_user answer: a key to true, false or a variant's name.
    public let bootstrapFlags: [String: Any]
    /// Sent with every for_user request, for flags that target person properties.
    public let personProperties: [String: Any]
    /// Where the client says what it did: print, os_log, or nothing.
    public let log: (String) -> Void

    public init(
        host: String,
        apiKey: String,
        storage: URL,
        appVersion: String? = nil,
        osName: String? = nil,
        osVersion: String? = nil,
        flushAt: Int = 100,
        flushIntervalSeconds: Int = 30,
        maxQueueSize: Int = 10_000,
        baseBackoffSeconds: Double = 1.0,
        maxBackoffSeconds: Double = 300.0,
        sessionTimeoutSeconds: Int = 1_800,
        bootstrapFlags: [String: Any] = [:],
        personProperties: [String: Any] = [:],
        log: @escaping (String) -> Void = { _ in }
    ) {
        precondition((1...1_000).contains(flushAt), "flushAt must be 1 to 1,000 (the server's batch limit)")
        precondition(maxQueueSize >= flushAt, "maxQueueSize must hold at least one batch")
        precondition(!apiKey.isEmpty, "apiKey is the project's public key, tlp_…")
        self.host = host
        self.apiKey = apiKey
        self.storage = storage
        self.appVersion = appVersion
        self.osName = osName
        self.osVersion = osVersion
        self.flushAt = flushAt
        self.flushIntervalSeconds = flushIntervalSeconds
        self.maxQueueSize = maxQueueSize
        self.baseBackoffSeconds = baseBackoffSeconds
        self.maxBackoffSeconds = maxBackoffSeconds
        self.sessionTimeoutSeconds = sessionTimeoutSeconds
        self.bootstrapFlags = bootstrapFlags
        self.personProperties = personProperties
        self.log = log
    }

    public var baseUrl: String {
        var trimmed = host
        while trimmed.hasSuffix("/") {
            trimmed.removeLast()
        }
        return trimmed + "/api/v1/analytics/"
    }
}

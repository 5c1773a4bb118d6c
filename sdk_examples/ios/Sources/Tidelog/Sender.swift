import Foundation

/// Sends the queue's head and does what the answer says (sdk_examples/README.md, "What the
/// answer does to the queue"): deletes what was stored or refused for good, keeps everything
/// else and waits. Never deletes on a 5xx, a 401 or a network error. One request at a time:
/// call it from one thread (the client's serial queue).
public final class Sender {
    public enum Outcome {
        case empty, waiting, sent, failed
    }

    public static let userAgent = "tidelog-swift/0.1"

    /// Kotlin's URLEncoder leaves letters, digits and ".-*_" alone; so does this.
    private static let pathSafe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-*_")

    /// A queued session body that is not JSON: not written by this client.
    private struct UnreadableRequest: Error {
        let detail: String
    }

    private let config: TidelogConfig
    private let queue: EventQueue
    private let transport: Transport
    private let clock: () -> Int64
    private let random: () -> Double

    /// Failed attempts in a row (for the backoff); a success puts it back to 0.
    public private(set) var failures = 0

    /// No request before this time (epoch millis).
    public private(set) var nextAttemptAt: Int64 = 0

    /// Shrinks after a 413, grows back after each success.
    private var batchLimit: Int

    public init(
        config: TidelogConfig,
        queue: EventQueue,
        transport: Transport,
        clock: @escaping () -> Int64 = Json.now,
        random: @escaping () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.config = config
        self.queue = queue
        self.transport = transport
        self.clock = clock
        self.random = random
        self.batchLimit = config.flushAt
    }

    public func isWaiting() -> Bool {
        return clock() < nextAttemptAt
    }

    /// Sends until the queue is empty or a request fails; the first Outcome that stops it.
    public func flush() -> Outcome {
        while true {
            let outcome = sendOnce()
            if outcome != .sent {
                return outcome
            }
        }
    }

    /// Sends one request (a batch or a session request) from the queue's head.
    public func sendOnce() -> Outcome {
        if isWaiting() {
            return .waiting
        }
        let head = queue.peek(batchLimit)
        guard let first = head.first else {
            return .empty
        }
        let requests: [QueuedRequest] = first.isEvent ? Array(head.prefix(while: { $0.isEvent })) : [first]
        let answer: Answer
        do {
            answer = try send(requests)
        } catch let unreadable as UnreadableRequest {
            // Sending it again cannot succeed, and it would block the queue for good.
            queue.remove(requests)
            config.log("\(first.kind) unreadable (\(unreadable.detail)): deleted, it was not written by this client")
            return .sent
        } catch {
            config.log("no answer from \(config.host) (\(error.localizedDescription)); kept")
            backOff(retryAfterSeconds: nil)
            return .failed
        }
        switch answer.status {
        case 200...299:
            queue.remove(requests)
            failures = 0
            batchLimit = min(config.flushAt, batchLimit * 2)
            logRejected(requests, answer)
        case 400:
            // The server refused the body whole and kept it in its bad-events list.
            queue.remove(requests)
            config.log("refused for good (400 \(String(answer.body.prefix(200)))): \(requests.count) deleted")
        case 413 where requests.count > 1:
            batchLimit = requests.count / 2
            config.log("413: sending batches of \(batchLimit)")
        case 413:
            queue.remove(requests)
            config.log("413 for a single \(first.kind): deleted, it can never be accepted")
        default:
            let retryAfter = answer.status == 503 || answer.status == 429 ? answer.retryAfterSeconds : nil
            config.log("\(answer.status) \(String(answer.body.prefix(200))); kept, retrying")
            backOff(retryAfterSeconds: retryAfter)
            return .failed
        }
        return .sent
    }

    private func send(_ requests: [QueuedRequest]) throws -> Answer {
        let sentAt = Json.timestamp(clock())
        let first = requests[0]
        if first.isEvent {
            // The bodies are the events' JSON as queued: joined, never decoded again.
            let body = "{\"sent_at\":\"\(sentAt)\",\"events\":[" + requests.map { $0.body }.joined(separator: ",") + "]}"
            let headers: [(String, String)] = [
                ("Authorization", "Bearer \(config.apiKey)"),
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
                ("User-Agent", Sender.userAgent),
            ]
            return try transport.send(method: "POST", url: config.baseUrl + "batch/", body: try Json.gzip(body), headers: headers)
        }
        let headers: [(String, String)] = [
            ("Authorization", "Bearer \(config.apiKey)"),
            ("Content-Type", "application/json"),
            ("User-Agent", Sender.userAgent),
        ]
        let decoded: Any
        do {
            decoded = try Json.decode(first.body)
        } catch {
            throw UnreadableRequest(detail: error.localizedDescription)
        }
        guard var fields = decoded as? [String: Any] else {
            throw UnreadableRequest(detail: "not a JSON object")
        }
        fields["sent_at"] = sentAt
        let body = Data(Json.encode(fields).utf8)
        if first.kind == EventQueue.sessionStart {
            return try transport.send(method: "POST", url: config.baseUrl + "session/start/", body: body, headers: headers)
        }
        var sessionId = first.kind
        if let space = first.kind.firstIndex(of: " ") {
            sessionId = String(first.kind[first.kind.index(after: space)...])
        }
        let path = "session/" + (sessionId.addingPercentEncoding(withAllowedCharacters: Sender.pathSafe) ?? sessionId) + "/end/"
        return try transport.send(method: "PUT", url: config.baseUrl + path, body: body, headers: headers)
    }

    private func backOff(retryAfterSeconds: Double?) {
        failures += 1
        let seconds: Double
        if let retryAfter = retryAfterSeconds {
            // Never sooner than asked; a little later, so a thousand phones do not come back at once.
            seconds = retryAfter * (1.0 + 0.2 * random())
        } else {
            let exponential = min(config.maxBackoffSeconds, config.baseBackoffSeconds * pow(2.0, Double(failures - 1)))
            seconds = exponential * (0.5 + 0.5 * random())
        }
        // Capped at a day: Int64(_:) traps on a Double out of range, Kotlin's toLong() saturates.
        nextAttemptAt = clock() + Int64(min(seconds, 86_400.0) * 1000)
    }

    private func logRejected(_ requests: [QueuedRequest], _ answer: Answer) {
        guard requests[0].isEvent,
              let object = (try? Json.decode(answer.body)) as? [String: Any],
              let rejected = object["rejected"] as? [Any] else {
            return
        }
        for item in rejected {
            guard let error = item as? [String: Any] else {
                continue
            }
            let index = Sender.text(error["index"])
            let code = Sender.text(error["code"])
            let field = Sender.text(error["field"])
            let message = Sender.text(error["message"])
            config.log("event \(index) rejected: \(code) (\(field)): \(message)")
        }
    }

    private static func text(_ value: Any?) -> String {
        guard let value = value, !(value is NSNull) else {
            return "null"
        }
        return "\(value)"
    }
}

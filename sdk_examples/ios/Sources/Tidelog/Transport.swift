import Foundation

/// The server's answer: its status, its Retry-After in seconds (when it sent a number) and body.
public struct Answer {
    public let status: Int
    public let retryAfterSeconds: Double?
    public let body: String

    public init(status: Int, retryAfterSeconds: Double?, body: String) {
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
        self.body = body
    }
}

/// One HTTP request, synchronous: the Sender calls it on the client's own serial queue, never on
/// the main thread. Throws when nothing answered (refused, reset, timed out). Headers are
/// (name, value) pairs, set in this order.
public protocol Transport {
    func send(method: String, url: String, body: Data, headers: [(String, String)]) throws -> Answer
}

/// URLSession: a data task, waited for with a semaphore. The task's completion handler runs on
/// the session's own delegate queue (URLSession(configuration:) makes a serial OperationQueue
/// for it), not on the waiting thread, so the wait cannot deadlock.
public final class URLSessionTransport: Transport {
    private let session: URLSession

    public init(requestTimeoutSeconds: TimeInterval = 10, resourceTimeoutSeconds: TimeInterval = 30) {
        let configuration = URLSessionConfiguration.ephemeral // no cache, no cookies kept
        configuration.timeoutIntervalForRequest = requestTimeoutSeconds
        configuration.timeoutIntervalForResource = resourceTimeoutSeconds
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    /// Where the completion handler leaves its result for the waiting thread (a class, so the
    /// handler does not mutate a captured variable); the semaphore orders the two.
    private final class Outcome: @unchecked Sendable {
        var answer: Answer?
        var error: Error?
    }

    public func send(method: String, url: String, body: Data, headers: [(String, String)]) throws -> Answer {
        guard let target = URL(string: url) else {
            throw URLError(.badURL)
        }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers {
            request.setValue(value, forHTTPHeaderField: name)
        }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: request) { data, response, error in
            defer { done.signal() }
            if let error = error {
                outcome.error = error
                return
            }
            guard let http = response as? HTTPURLResponse else {
                outcome.error = URLError(.badServerResponse)
                return
            }
            let text = data.map { String(decoding: $0, as: UTF8.self) } ?? ""
            // Retry-After may also be an HTTP date; Tidelog sends seconds, and a date is ignored.
            var retryAfter: Double?
            if let header = http.value(forHTTPHeaderField: "Retry-After"),
               let seconds = Double(header.trimmingCharacters(in: .whitespaces)),
               seconds.isFinite, seconds >= 0 {
                retryAfter = seconds
            }
            outcome.answer = Answer(status: http.statusCode, retryAfterSeconds: retryAfter, body: text)
        }
        task.resume()
        done.wait() // the session's timeouts end the task, so this wait ends too
        if let answer = outcome.answer {
            return answer
        }
        throw outcome.error ?? URLError(.unknown)
    }
}

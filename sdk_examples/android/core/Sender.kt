package dev.tidelog.sdk

import java.io.IOException
import kotlin.math.min
import kotlin.math.pow
import kotlin.random.Random

/**
 * Sends the queue's head and does what the answer says (sdk_examples/README.md, "What the
 * answer does to the queue"): deletes what was stored or refused for good, keeps everything
 * else and waits. Never deletes on a 5xx, a 401 or a network error. One request at a time:
 * call it from one thread.
 */
class Sender(
    private val config: TidelogConfig,
    private val queue: EventQueue,
    private val transport: Transport,
    private val clock: () -> Long = System::currentTimeMillis,
    private val random: Random = Random.Default
) {
    enum class Outcome { EMPTY, WAITING, SENT, FAILED }

    /** Failed attempts in a row (for the backoff); a success puts it back to 0. */
    var failures = 0
        private set

    /** No request before this time (epoch millis). */
    var nextAttemptAt = 0L
        private set

    /** Shrinks after a 413, grows back after each success. */
    private var batchLimit = config.flushAt

    fun isWaiting(): Boolean = clock() < nextAttemptAt

    /** Sends until the queue is empty or a request fails; the first Outcome that stops it. */
    fun flush(): Outcome {
        while (true) {
            val outcome = sendOnce()
            if (outcome != Outcome.SENT) return outcome
        }
    }

    /** Sends one request (a batch or a session request) from the queue's head. */
    fun sendOnce(): Outcome {
        if (isWaiting()) return Outcome.WAITING
        val head = queue.peek(batchLimit)
        if (head.isEmpty()) return Outcome.EMPTY
        val requests = if (head[0].isEvent) head.takeWhile { it.isEvent } else head.subList(0, 1)
        val answer = try {
            send(requests)
        } catch (error: IOException) {
            config.log("no answer from ${config.host} (${error.javaClass.simpleName}: ${error.message}); kept")
            backOff(null)
            return Outcome.FAILED
        }
        when {
            answer.status in 200..299 -> {
                queue.remove(requests)
                failures = 0
                batchLimit = min(config.flushAt, batchLimit * 2)
                logRejected(requests, answer)
            }
            answer.status == 400 -> {
                // The server refused the body whole and kept it in its bad-events list.
                queue.remove(requests)
                config.log("refused for good (400 ${answer.body.take(200)}): ${requests.size} deleted")
            }
            answer.status == 413 && requests.size > 1 -> {
                batchLimit = requests.size / 2
                config.log("413: sending batches of $batchLimit")
            }
            answer.status == 413 -> {
                queue.remove(requests)
                config.log("413 for a single ${requests[0].kind}: deleted, it can never be accepted")
            }
            else -> {
                val retryAfter = if (answer.status == 503 || answer.status == 429) answer.retryAfterSeconds else null
                config.log("${answer.status} ${answer.body.take(200)}; kept, retrying")
                backOff(retryAfter)
                return Outcome.FAILED
            }
        }
        return Outcome.SENT
    }

    private fun send(requests: List<QueuedRequest>): Answer {
        val sentAt = Json.timestamp(clock())
        val headers = mutableMapOf(
            "Authorization" to "Bearer ${config.apiKey}",
            "Content-Type" to "application/json",
            "User-Agent" to USER_AGENT
        )
        val first = requests[0]
        if (first.isEvent) {
            // The bodies are the events' JSON as queued: joined, never decoded again.
            val body = "{\"sent_at\":\"$sentAt\",\"events\":[" + requests.joinToString(",") { it.body } + "]}"
            headers["Content-Encoding"] = "gzip"
            return transport.send("POST", config.baseUrl + "batch/", Json.gzip(body), headers)
        }
        @Suppress("UNCHECKED_CAST")
        val fields = Json.decode(first.body) as Map<String, Any?>
        val body = Json.encode(mapOf("sent_at" to sentAt) + fields).toByteArray(Charsets.UTF_8)
        return if (first.kind == EventQueue.SESSION_START) {
            transport.send("POST", config.baseUrl + "session/start/", body, headers)
        } else {
            val sessionId = first.kind.substringAfter(' ')
            // URLEncoder is for forms: its "+" for a space would be a plus in a path.
            val path = "session/" + java.net.URLEncoder.encode(sessionId, "UTF-8").replace("+", "%20") + "/end/"
            transport.send("PUT", config.baseUrl + path, body, headers)
        }
    }

    private fun backOff(retryAfterSeconds: Double?) {
        failures++
        val seconds = if (retryAfterSeconds != null) {
            // Never sooner than asked; a little later, so a thousand phones do not come back at once.
            retryAfterSeconds * (1.0 + 0.2 * random.nextDouble())
        } else {
            val exponential = min(config.maxBackoffSeconds, config.baseBackoffSeconds * 2.0.pow(failures - 1))
            exponential * (0.5 + 0.5 * random.nextDouble())
        }
        nextAttemptAt = clock() + (seconds * 1000).toLong()
    }

    private fun logRejected(requests: List<QueuedRequest>, answer: Answer) {
        if (!requests[0].isEvent) return
        val rejected = try {
            (Json.decode(answer.body) as? Map<*, *>)?.get("rejected") as? List<*>
        } catch (error: IllegalArgumentException) {
            null
        }
        for (item in rejected ?: emptyList<Any?>()) {
            val error = item as? Map<*, *> ?: continue
            config.log("event ${error["index"]} rejected: ${error["code"]} (${error["field"]}): ${error["message"]}")
        }
    }

    companion object {
        const val USER_AGENT = "tidelog-kotlin/0.1"
    }
}

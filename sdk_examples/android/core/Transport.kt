package dev.tidelog.sdk

import java.net.HttpURLConnection
import java.net.URL

/** The server's answer: its status, its Retry-After in seconds (when it sent a number) and body. */
class Answer(val status: Int, val retryAfterSeconds: Double?, val body: String)

/** One HTTP request. Throws java.io.IOException when nothing answered (refused, reset, timed out). */
interface Transport {
    fun send(method: String, url: String, body: ByteArray, headers: Map<String, String>): Answer
}

/** HttpURLConnection: on the JDK and on Android alike, no library needed. */
class UrlConnectionTransport(
    private val connectTimeoutMillis: Int = 10_000,
    private val readTimeoutMillis: Int = 30_000
) : Transport {
    override fun send(method: String, url: String, body: ByteArray, headers: Map<String, String>): Answer {
        val connection = URL(url).openConnection() as HttpURLConnection
        try {
            connection.requestMethod = method
            connection.connectTimeout = connectTimeoutMillis
            connection.readTimeout = readTimeoutMillis
            connection.doOutput = true
            connection.useCaches = false
            for ((name, value) in headers) connection.setRequestProperty(name, value)
            connection.setFixedLengthStreamingMode(body.size)
            connection.outputStream.use { it.write(body) }
            val status = connection.responseCode
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val text = stream?.use { it.readBytes().toString(Charsets.UTF_8) } ?: ""
            // Retry-After may also be an HTTP date; Tidelog sends seconds, and a date is ignored.
            val retryAfter = connection.getHeaderField("Retry-After")?.trim()?.toDoubleOrNull()
            return Answer(status, retryAfter, text)
        } finally {
            connection.disconnect()
        }
    }
}

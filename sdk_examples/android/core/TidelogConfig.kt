package dev.tidelog.sdk

import java.io.File

/**
 * What an app tells the client: where Tidelog is, its project key, where to keep the queue, and
 * the rules' numbers (sdk_examples/README.md, "Defaults"). The device fields come from the
 * platform glue (TidelogAndroid.kt), or from the JVM for the demo.
 */
class TidelogConfig(
    /** The command API's base URL: "https://tidelog.example.com", "http://10.0.2.2:8000". */
    val host: String,
    /** The project's public key, "tlp_…". */
    val apiKey: String,
    /** The folder the queue, the identity, the session and the flags live in. */
    val storage: File,
    val appVersion: String? = null,
    val osName: String? = null,
    val osVersion: String? = null,
    /** Events a batch, and the queue length that starts a flush. */
    val flushAt: Int = 100,
    val flushIntervalSeconds: Long = 30,
    /** Requests kept on disk; past it the oldest are deleted (and counted). */
    val maxQueueSize: Int = 10_000,
    val baseBackoffSeconds: Double = 1.0,
    val maxBackoffSeconds: Double = 300.0,
    /** Background time that ends a session. */
    val sessionTimeoutSeconds: Long = 1_800,
    /** Flag answers before the first for_user answer: a key to true, false or a variant's name. */
    val bootstrapFlags: Map<String, Any> = emptyMap(),
    /** Sent with every for_user request, for flags that target person properties. */
    val personProperties: Map<String, Any?> = emptyMap(),
    /** Where the client says what it did: Android's Log.i, println, or nothing. */
    val log: (String) -> Unit = {}
) {
    init {
        require(flushAt in 1..1_000) { "flushAt must be 1 to 1,000 (the server's batch limit)" }
        require(maxQueueSize >= flushAt) { "maxQueueSize must hold at least one batch" }
        require(apiKey.isNotEmpty()) { "apiKey is the project's public key, tlp_…" }
    }

    val baseUrl: String get() = host.trimEnd('/') + "/api/v1/analytics/"
}

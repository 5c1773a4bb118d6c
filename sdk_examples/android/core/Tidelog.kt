package dev.tidelog.sdk

import java.io.File
import java.util.UUID
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.random.Random

/**
 * What an app calls. `track` and the rest write to the durable queue on the caller's thread,
 * so what they returned from survives the process; sending, retrying and fetching flags happen
 * on one background thread of the client's own.
 */
class Tidelog(
    val config: TidelogConfig,
    transport: Transport = UrlConnectionTransport(),
    private val clock: () -> Long = System::currentTimeMillis,
    random: Random = Random.Default
) {
    private val worker = Executors.newSingleThreadScheduledExecutor { task ->
        Thread(task, "tidelog").apply { isDaemon = true }
    }
    private val identityFile = File(config.storage, "identity.json")
    val queue: EventQueue
    private val sender: Sender
    private val sessions: Sessions
    private val flags: Flags
    private val retryPending = AtomicBoolean(false)
    private val flushPending = AtomicBoolean(false)

    @Volatile
    var distinctId: String
        private set
    val deviceId: String

    init {
        config.storage.mkdirs()
        queue = EventQueue(config.storage, config.maxQueueSize, config.log)
        sender = Sender(config, queue, transport, clock, random)
        val saved = readIdentity()
        distinctId = saved["distinct_id"] as String? ?: UUID.randomUUID().toString()
        deviceId = saved["device_id"] as String? ?: UUID.randomUUID().toString()
        if (saved.isEmpty()) saveIdentity()
        sessions = Sessions(config, queue, clock) { requestFields() }
        flags = Flags(config, transport) { key, value ->
            track("\$feature_flag_called", mapOf("\$feature_flag" to key, "\$feature_flag_response" to value))
        }
        worker.scheduleWithFixedDelay({ flushNow() }, config.flushIntervalSeconds, config.flushIntervalSeconds, TimeUnit.SECONDS)
        worker.execute { flags.reload(distinctId) }
        if (queue.size > 0) flush() // what an earlier process left
    }

    val sessionId: String? get() = sessions.sessionId

    /** Queues an event; returns its uuid. On disk when this returns. */
    fun track(eventType: String, properties: Map<String, Any?> = emptyMap()): String {
        val uuid = UUID.randomUUID().toString()
        val event = LinkedHashMap<String, Any?>()
        event["uuid"] = uuid
        event["event_type"] = eventType
        event["timestamp"] = Json.timestamp(clock())
        event.putAll(requestFields())
        sessions.sessionId?.let { event["session_id"] = it }
        if (properties.isNotEmpty()) event["properties"] = properties
        queue.add(EventQueue.EVENT, Json.encode(event))
        sessions.touch()
        if (queue.size >= config.flushAt) flush()
        return uuid
    }

    /** A screen view: the sessions read model counts `$screen` events as screens. */
    fun screen(name: String, properties: Map<String, Any?> = emptyMap()): String =
        track("\$screen", properties + ("\$screen_name" to name))

    /** The user logged in: the anonymous id's past becomes theirs, and their flags are fetched. */
    fun identify(userId: String, set: Map<String, Any?> = emptyMap(), setOnce: Map<String, Any?> = emptyMap()) {
        require(userId.isNotBlank()) { "userId must not be blank" }
        val previous = distinctId
        if (userId == previous && set.isEmpty() && setOnce.isEmpty()) return
        distinctId = userId
        saveIdentity()
        val properties = LinkedHashMap<String, Any?>()
        if (userId != previous) properties["\$anon_distinct_id"] = previous
        if (set.isNotEmpty()) properties["\$set"] = set
        if (setOnce.isNotEmpty()) properties["\$set_once"] = setOnce
        track("\$identify", properties)
        if (userId != previous) worker.execute { flags.reload(userId) }
    }

    /** Log out: a new anonymous id and session; flags and exposures start afresh. */
    fun reset() {
        flags.forget()
        sessions.restart {
            distinctId = UUID.randomUUID().toString()
            saveIdentity()
        }
        val id = distinctId
        worker.execute { flags.reload(id) }
    }

    fun isEnabled(key: String): Boolean {
        val value = flags.value(key, distinctId)
        return value != null && value != false
    }

    /** A multivariate flag's variant; null when off, boolean or unknown. */
    fun getVariant(key: String): String? = flags.value(key, distinctId) as? String

    fun getPayload(key: String): Any? = flags.payload(key)

    /** Fetches the flags again now (the app may also call it on resume). */
    fun reloadFlags() {
        val id = distinctId
        worker.execute { flags.reload(id) }
    }

    fun onForeground() = sessions.onForeground()

    /** Backgrounded: the session's clock starts, and what is queued goes now, while we may. */
    fun onBackground() {
        sessions.onBackground()
        flush()
    }

    /** Sends what is queued, in the background. */
    fun flush() {
        // One waiting flush is enough: a thousand track() calls offline make one, not a thousand.
        if (flushPending.compareAndSet(false, true)) worker.execute { flushNow() }
    }

    /** Waits until the queue is empty; false after [timeoutMillis] (offline, server away). */
    fun awaitEmpty(timeoutMillis: Long): Boolean {
        val deadline = System.currentTimeMillis() + timeoutMillis
        while (queue.size > 0) {
            if (System.currentTimeMillis() >= deadline) return false
            Thread.sleep(20)
        }
        return true
    }

    /** Stops the background thread after one last flush attempt; the queue stays on disk. */
    fun shutdown(timeoutMillis: Long = 5_000) {
        flush()
        worker.shutdown()
        worker.awaitTermination(timeoutMillis, TimeUnit.MILLISECONDS)
    }

    private fun flushNow() {
        flushPending.set(false)
        val outcome = sender.flush()
        if (outcome == Sender.Outcome.FAILED || outcome == Sender.Outcome.WAITING) {
            // Come back when the backoff ends, not only at the next 30 s tick.
            if (retryPending.compareAndSet(false, true)) {
                val delay = maxOf(0L, sender.nextAttemptAt - clock())
                worker.schedule({ retryPending.set(false); flushNow() }, delay, TimeUnit.MILLISECONDS)
            }
        }
    }

    private fun requestFields(): Map<String, Any?> {
        val fields = LinkedHashMap<String, Any?>()
        fields["distinct_id"] = distinctId
        fields["device_id"] = deviceId
        config.appVersion?.let { fields["app_version"] = it }
        config.osName?.let { fields["os_name"] = it }
        config.osVersion?.let { fields["os_version"] = it }
        return fields
    }

    private fun readIdentity(): Map<String, Any?> = try {
        @Suppress("UNCHECKED_CAST")
        Json.decode(identityFile.readText(Charsets.UTF_8)) as Map<String, Any?>
    } catch (missing: java.io.IOException) {
        emptyMap()
    }

    @Synchronized
    private fun saveIdentity() {
        val temporary = File(identityFile.path + ".tmp")
        temporary.writeText(Json.encode(mapOf("distinct_id" to distinctId, "device_id" to deviceId)), Charsets.UTF_8)
        temporary.renameTo(identityFile)
    }
}

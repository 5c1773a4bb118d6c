package dev.tidelog.sdk

import java.io.File
import java.util.UUID

/**
 * Sessions as the app's lifecycle makes them: one starts when the app comes to the foreground
 * with none, or after sessionTimeoutSeconds in the background. The old one's end is queued then,
 * stamped with when the app went to the background (a phone runs no timer in the background).
 * Kept in `<storage>/session.json`, so a cold start after the OS killed the app resumes it.
 */
class Sessions(
    private val config: TidelogConfig,
    private val queue: EventQueue,
    private val clock: () -> Long,
    /** The distinct_id and device fields every session request carries. */
    private val identity: () -> Map<String, Any?>
) {
    private val file = File(config.storage, "session.json")

    @Volatile
    var sessionId: String? = null
        private set
    private var backgroundedAt: Long? = null
    private var lastActivityAt = 0L
    private var savedActivityAt = 0L

    init {
        try {
            @Suppress("UNCHECKED_CAST")
            val saved = Json.decode(file.readText(Charsets.UTF_8)) as Map<String, Any?>
            sessionId = saved["session_id"] as String?
            backgroundedAt = (saved["backgrounded_at"] as Number?)?.toLong()
            lastActivityAt = (saved["last_activity_at"] as Number?)?.toLong() ?: 0L
        } catch (missing: java.io.IOException) {
            // a fresh install
        } catch (unreadable: RuntimeException) {
            config.log("session.json unreadable (${unreadable.message}): a new session at the next foreground")
        }
    }

    @Synchronized
    fun onForeground() {
        val now = clock()
        val current = sessionId
        // Killed in the foreground (a crash, the OS): the last activity stands for the background.
        val idleSince = backgroundedAt ?: lastActivityAt
        if (current != null && now - idleSince >= config.sessionTimeoutSeconds * 1000) {
            end(current, idleSince)
            start(now)
        } else if (current == null) {
            start(now)
        }
        backgroundedAt = null
        lastActivityAt = now
        save()
    }

    @Synchronized
    fun onBackground() {
        backgroundedAt = clock()
        save()
    }

    /** An event was tracked: the session is alive. Saved at most every 10 s (a crash loses less). */
    @Synchronized
    fun touch() {
        lastActivityAt = clock()
        if (lastActivityAt - savedActivityAt >= 10_000) save()
    }

    /** Log out: the session ends now under the old identity, and a new one starts under the new. */
    @Synchronized
    fun restart(switchIdentity: () -> Unit) {
        val now = clock()
        sessionId?.let { end(it, now) }
        switchIdentity()
        start(now)
        save()
    }

    private fun start(at: Long) {
        val id = UUID.randomUUID().toString()
        queue.add(EventQueue.SESSION_START, Json.encode(identity() + mapOf("session_id" to id, "timestamp" to Json.timestamp(at))))
        sessionId = id
        config.log("session $id started")
    }

    private fun end(id: String, at: Long) {
        queue.add("${EventQueue.SESSION_END} $id", Json.encode(identity() + mapOf("timestamp" to Json.timestamp(at))))
        config.log("session $id ended at ${Json.timestamp(at)}")
    }

    private fun save() {
        val state = mapOf("session_id" to sessionId, "backgrounded_at" to backgroundedAt, "last_activity_at" to lastActivityAt)
        val temporary = File(file.path + ".tmp")
        temporary.writeText(Json.encode(state), Charsets.UTF_8)
        temporary.renameTo(file)
        savedActivityAt = lastActivityAt
    }
}

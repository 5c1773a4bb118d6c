package dev.tidelog.sdk

import java.io.File

/** One queued request: what it is (its kind) and its JSON body. */
class QueuedRequest(val file: File, val kind: String, val body: String) {
    val isEvent: Boolean get() = kind == EventQueue.EVENT
}

/**
 * The durable queue: one file per request in `<storage>/queue/`, written to a temporary name
 * and renamed, so a killed process leaves the whole request or none of it. Names sort in queue
 * order (milliseconds, then a counter). The first line is the kind ("event", "session_start",
 * "session_end <id>"), the rest the body. A file is deleted only when the Sender says so.
 * Safe from several threads: the app's (add) and the sender's (peek, remove).
 */
class EventQueue(storage: File, private val maxSize: Int, private val log: (String) -> Unit) {
    private val folder = File(storage, "queue")
    private val files = java.util.TreeSet<String>()
    private var counter = 0
    private var lastMillis = 0L

    /** Requests deleted to keep the queue within maxSize, since this process started. */
    var dropped = 0
        private set

    init {
        folder.mkdirs()
        for (name in folder.list() ?: emptyArray()) {
            when {
                // A write the process died in: the track() that made it never returned.
                name.endsWith(".tmp") -> File(folder, name).delete()
                name.endsWith(".req") -> files.add(name)
            }
        }
    }

    val size: Int @Synchronized get() = files.size

    @Synchronized
    fun add(kind: String, body: String) {
        val now = System.currentTimeMillis()
        // Names must keep growing even if the clock steps back (a user setting the time).
        val millis = if (now > lastMillis) now else lastMillis
        counter = if (millis == lastMillis) counter + 1 else 0
        lastMillis = millis
        val name = String.format("%013d-%06d.req", millis, counter)
        val temporary = File(folder, "$name.tmp")
        temporary.writeText(kind + "\n" + body, Charsets.UTF_8)
        if (!temporary.renameTo(File(folder, name))) {
            temporary.delete()
            throw java.io.IOException("could not rename $temporary")
        }
        files.add(name)
        while (files.size > maxSize) {
            val oldest = files.pollFirst()
            File(folder, oldest).delete()
            dropped++
            log("queue full ($maxSize): dropped the oldest request, $dropped so far")
        }
    }

    /** The first [count] requests, oldest first. */
    @Synchronized
    fun peek(count: Int): List<QueuedRequest> {
        val result = ArrayList<QueuedRequest>()
        val names = files.iterator()
        while (names.hasNext() && result.size < count) {
            val name = names.next()
            val text = try {
                File(folder, name).readText(Charsets.UTF_8)
            } catch (missing: java.io.IOException) {
                names.remove() // deleted under us (only by hand): forget it
                continue
            }
            val newline = text.indexOf('\n')
            if (newline < 0) {
                File(folder, name).delete() // cannot come from add(): not ours
                names.remove()
                continue
            }
            result.add(QueuedRequest(File(folder, name), text.substring(0, newline), text.substring(newline + 1)))
        }
        return result
    }

    @Synchronized
    fun remove(requests: List<QueuedRequest>) {
        for (request in requests) {
            request.file.delete()
            files.remove(request.file.name)
        }
    }

    companion object {
        const val EVENT = "event"
        const val SESSION_START = "session_start"
        const val SESSION_END = "session_end"
    }
}

package dev.tidelog.sdk

import java.io.File
import java.io.IOException

/**
 * Feature flags: `for_user` fetched on start, identify and reset, never queued; its answer kept
 * in `<storage>/flags.json` and served from there offline and on a cold start; the config's
 * bootstrap values before any answer. Each flag read reports one `$feature_flag_called` per
 * user, flag and value, remembered in `<storage>/exposures.txt` across cold starts.
 */
class Flags(
    private val config: TidelogConfig,
    private val transport: Transport,
    /** Queues the exposure event: the facade's track(). */
    private val expose: (flag: String, value: Any) -> Unit
) {
    private val cacheFile = File(config.storage, "flags.json")
    private val exposuresFile = File(config.storage, "exposures.txt")

    /** key → {"enabled", "variant", "payload"}, as the last answer gave them; null before any. */
    @Volatile
    private var cached: Map<String, Map<String, Any?>>? = null
    private val exposed = HashSet<String>()

    init {
        try {
            @Suppress("UNCHECKED_CAST")
            cached = (Json.decode(cacheFile.readText(Charsets.UTF_8)) as Map<String, Any?>)["flags"] as Map<String, Map<String, Any?>>?
        } catch (missing: IOException) {
            // never fetched on this install
        } catch (unreadable: RuntimeException) {
            config.log("flags.json unreadable (${unreadable.message}): bootstrap values until the next answer")
        }
        if (exposuresFile.exists()) exposed.addAll(exposuresFile.readLines(Charsets.UTF_8))
    }

    /** Asks the server; true when the cache now holds its answer. Runs on the client's thread. */
    fun reload(distinctId: String): Boolean {
        val body = Json.encode(mapOf("distinct_id" to distinctId, "person_properties" to config.personProperties))
        val headers = mapOf(
            "Authorization" to "Bearer ${config.apiKey}",
            "Content-Type" to "application/json",
            "User-Agent" to Sender.USER_AGENT
        )
        val answer = try {
            transport.send("POST", config.baseUrl + "public/feature-flags/for_user/", body.toByteArray(Charsets.UTF_8), headers)
        } catch (error: IOException) {
            config.log("flags not fetched (${error.message}): serving the cache")
            return false
        }
        if (answer.status != 200) {
            config.log("flags not fetched (${answer.status} ${answer.body.take(200)}): serving the cache")
            return false
        }
        val flags = LinkedHashMap<String, Map<String, Any?>>()
        try {
            val all = (Json.decode(answer.body) as Map<*, *>)["flags"] as Map<*, *>
            for ((key, value) in all) {
                val flag = value as Map<*, *>
                flags[key.toString()] = mapOf("enabled" to flag["enabled"], "variant" to flag["variant"], "payload" to flag["payload"])
            }
        } catch (error: RuntimeException) {
            config.log("flags answer unreadable (${error.message}): serving the cache")
            return false
        }
        cached = flags
        val temporary = File(cacheFile.path + ".tmp")
        temporary.writeText(Json.encode(mapOf("distinct_id" to distinctId, "flags" to flags)), Charsets.UTF_8)
        temporary.renameTo(cacheFile)
        return true
    }

    /** The flag's value: its variant, else whether it is on; null for a flag nobody knows of. */
    fun value(key: String, distinctId: String): Any? {
        val flags = cached
        val value: Any? = if (flags == null) {
            config.bootstrapFlags[key]
        } else {
            val flag = flags[key] ?: return null
            flag["variant"] ?: (flag["enabled"] == true)
        }
        if (value != null) recordExposure(distinctId, key, value)
        return value
    }

    fun payload(key: String): Any? = cached?.get(key)?.get("payload")

    /** Logged out: the next user's flags and exposures start afresh. */
    @Synchronized
    fun forget() {
        cached = null
        cacheFile.delete()
        exposed.clear()
        exposuresFile.delete()
    }

    @Synchronized
    private fun recordExposure(distinctId: String, key: String, value: Any) {
        val line = "$distinctId\t$key\t$value"
        if (!exposed.add(line)) return
        expose(key, value)
        exposuresFile.appendText(line + "\n", Charsets.UTF_8)
    }
}

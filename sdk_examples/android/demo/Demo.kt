package dev.tidelog.demo

import dev.tidelog.sdk.Tidelog
import dev.tidelog.sdk.TidelogConfig
import java.io.File

/**
 * A console "app" around the client, for tests/sdk/test_kotlin_sdk.py and for trying the client
 * by hand: options configure it, then each line of standard input is one action, answered by a
 * line on standard output ("ok …", or a value). The client's log lines start with "log ".
 *
 *     java -jar demo.jar --host http://127.0.0.1:8000 --key tlp_… --storage /tmp/app
 *     foreground | background | track <event_type> [count] | screen <name> | identify <user_id>
 *     reset | flag <key> | payload <key> | flush | drain <seconds> | queue | sleep <ms> | exit
 */
fun main(args: Array<String>) {
    val options = args.toList().chunked(2).associate { (name, value) -> name.removePrefix("--") to value }
    val config = TidelogConfig(
        host = options.getValue("host"),
        apiKey = options.getValue("key"),
        storage = File(options.getValue("storage")),
        appVersion = options["app-version"] ?: "1.0.0",
        osName = System.getProperty("os.name"),
        osVersion = System.getProperty("os.version"),
        flushAt = options["flush-at"]?.toInt() ?: 100,
        flushIntervalSeconds = options["flush-interval"]?.toLong() ?: 30,
        maxQueueSize = options["max-queue"]?.toInt() ?: 10_000,
        baseBackoffSeconds = options["base-backoff"]?.toDouble() ?: 1.0,
        maxBackoffSeconds = options["max-backoff"]?.toDouble() ?: 300.0,
        sessionTimeoutSeconds = options["session-timeout"]?.toLong() ?: 1_800,
        bootstrapFlags = options["bootstrap"]?.split(",")?.associate {
            val (key, value) = it.split("=")
            key to (value.toBooleanStrictOrNull() ?: value)
        } ?: emptyMap(),
        log = { message -> synchronized(System.out) { println("log $message"); System.out.flush() } }
    )
    val tidelog = Tidelog(config)
    fun say(line: String) = synchronized(System.out) { println(line); System.out.flush() }
    say("ready ${tidelog.distinctId}")
    for (line in generateSequence(::readLine)) {
        val words = line.trim().split(" ")
        if (words[0].length == 0) continue
        when (words[0]) {
            "foreground" -> tidelog.onForeground()
            "background" -> tidelog.onBackground()
            "track" -> repeat(words.getOrNull(2)?.toInt() ?: 1) { n -> tidelog.track(words[1], mapOf("n" to n)) }
            "screen" -> tidelog.screen(words[1])
            "identify" -> tidelog.identify(words[1], mapOf("plan" to "pro"))
            "reset" -> tidelog.reset()
            "flag" -> say("flag ${words[1]} ${tidelog.getVariant(words[1]) ?: tidelog.isEnabled(words[1])}")
            "payload" -> say("payload ${words[1]} ${tidelog.getPayload(words[1])}")
            "reload" -> tidelog.reloadFlags()
            "flush" -> tidelog.flush()
            "drain" -> {
                tidelog.flush()
                say("drained ${tidelog.awaitEmpty((words[1].toDouble() * 1000).toLong())}")
            }
            "queue" -> say("queue ${tidelog.queue.size} dropped ${tidelog.queue.dropped}")
            "session" -> say("session ${tidelog.sessionId}")
            "sleep" -> Thread.sleep(words[1].toLong())
            "exit" -> {
                tidelog.shutdown()
                say("bye")
                return
            }
            else -> say("unknown ${words[0]}")
        }
        say("ok ${words[0]}")
    }
}

private fun String.toBooleanStrictOrNull(): Boolean? = when (this) {
    "true" -> true
    "false" -> false
    else -> null
}

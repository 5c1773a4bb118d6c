package dev.tidelog.sdk

import java.io.ByteArrayOutputStream
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.zip.GZIPOutputStream

/**
 * JSON, gzip and time stamps, with nothing but the JDK: a body is built from maps, lists,
 * strings, numbers, booleans and nulls, and an answer is read back into the same. (On Android
 * org.json would do; the core stays plain JVM so it compiles and runs on this machine.)
 */
object Json {
    fun encode(value: Any?): String = StringBuilder().also { write(it, value) }.toString()

    private fun write(out: StringBuilder, value: Any?) {
        when (value) {
            null -> out.append("null")
            is String -> quote(out, value)
            is Boolean -> out.append(value)
            is Int, is Long, is Short, is Byte -> out.append(value)
            is Number -> {
                val number = value.toDouble()
                // JSON has no NaN or infinity: send null rather than a body the server refuses.
                if (number.isNaN() || number.isInfinite()) out.append("null") else out.append(number)
            }
            is Map<*, *> -> {
                out.append('{')
                var first = true
                for ((key, item) in value) {
                    if (!first) out.append(',')
                    first = false
                    quote(out, key.toString())
                    out.append(':')
                    write(out, item)
                }
                out.append('}')
            }
            is Iterable<*> -> {
                out.append('[')
                var first = true
                for (item in value) {
                    if (!first) out.append(',')
                    first = false
                    write(out, item)
                }
                out.append(']')
            }
            is Array<*> -> write(out, value.asList())
            else -> quote(out, value.toString())
        }
    }

    private fun quote(out: StringBuilder, text: String) {
        out.append('"')
        for (c in text) {
            when {
                c == '"' -> out.append("\\\"")
                c == '\\' -> out.append("\\\\")
                c == '\n' -> out.append("\\n")
                c == '\r' -> out.append("\\r")
                c == '\t' -> out.append("\\t")
                c < ' ' -> out.append(String.format("\\u%04x", c.toInt()))
                else -> out.append(c)
            }
        }
        out.append('"')
    }

    /** Parses a JSON text: objects become LinkedHashMap, arrays List, numbers Long or Double. */
    fun decode(text: String): Any? {
        val parser = Parser(text)
        val value = parser.value()
        parser.skipSpace()
        if (parser.at < text.length) throw IllegalArgumentException("trailing text at ${parser.at}")
        return value
    }

    private class Parser(val text: String) {
        var at = 0

        fun skipSpace() {
            while (at < text.length && text[at] in " \t\r\n") at++
        }

        fun value(): Any? {
            skipSpace()
            if (at >= text.length) throw IllegalArgumentException("unexpected end")
            return when (text[at]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> number()
            }
        }

        private fun literal(word: String, value: Any?): Any? {
            if (!text.startsWith(word, at)) throw IllegalArgumentException("bad literal at $at")
            at += word.length
            return value
        }

        private fun obj(): Map<String, Any?> {
            val result = LinkedHashMap<String, Any?>()
            at++
            skipSpace()
            if (text[at] == '}') { at++; return result }
            while (true) {
                skipSpace()
                val key = string()
                skipSpace()
                expect(':')
                result[key] = value()
                skipSpace()
                if (text[at] == ',') { at++; continue }
                expect('}')
                return result
            }
        }

        private fun array(): List<Any?> {
            val result = ArrayList<Any?>()
            at++
            skipSpace()
            if (text[at] == ']') { at++; return result }
            while (true) {
                result.add(value())
                skipSpace()
                if (text[at] == ',') { at++; continue }
                expect(']')
                return result
            }
        }

        private fun expect(c: Char) {
            if (at >= text.length || text[at] != c) throw IllegalArgumentException("expected '$c' at $at")
            at++
        }

        private fun string(): String {
            expect('"')
            val out = StringBuilder()
            while (true) {
                val c = text[at++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        val escaped = text[at++]
                        when (escaped) {
                            'n' -> out.append('\n')
                            't' -> out.append('\t')
                            'r' -> out.append('\r')
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000c')
                            'u' -> { out.append(text.substring(at, at + 4).toInt(16).toChar()); at += 4 }
                            else -> out.append(escaped)
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        private fun number(): Any {
            val start = at
            while (at < text.length && text[at] in "+-0123456789.eE") at++
            val token = text.substring(start, at)
            if (token.length == 0) throw IllegalArgumentException("unexpected '${text[start]}' at $start")
            return token.toLongOrNull() ?: token.toDouble()
        }
    }

    fun gzip(text: String): ByteArray {
        val bytes = ByteArrayOutputStream()
        GZIPOutputStream(bytes).use { it.write(text.toByteArray(Charsets.UTF_8)) }
        return bytes.toByteArray()
    }

    private val TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC)

    /** RFC 3339 in UTC with milliseconds, always three digits: "2026-11-27T07:02:27.120Z". */
    fun timestamp(epochMillis: Long): String = TIME.format(Instant.ofEpochMilli(epochMillis))
}

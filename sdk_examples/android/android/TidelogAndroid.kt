package dev.tidelog.sdk.android

import android.app.Activity
import android.app.Application
import android.os.Build
import android.os.Bundle
import android.util.Log
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import dev.tidelog.sdk.Tidelog
import dev.tidelog.sdk.TidelogConfig
import java.io.File

/**
 * The Android glue around the platform-neutral core (../core): the device fields from the
 * platform, the queue in the app's private files, and the app's lifecycle as sessions and
 * flushes. Call [setup] once, in Application.onCreate; then use [shared] anywhere.
 * Needs androidx.lifecycle:lifecycle-process (ProcessLifecycleOwner) and minSdk 26 (java.time).
 */
object TidelogAndroid {
    @Volatile
    private var instance: Tidelog? = null

    val shared: Tidelog
        get() = instance ?: throw IllegalStateException("call TidelogAndroid.setup(this, …) in Application.onCreate")

    /**
     * Starts the client. [trackScreens] records each Activity the user sees as a `$screen`
     * named after its class; leave it off where screens are Compose destinations, and call
     * Tidelog.screen() from the navigation listener instead.
     */
    fun setup(
        application: Application,
        host: String,
        apiKey: String,
        bootstrapFlags: Map<String, Any> = emptyMap(),
        trackScreens: Boolean = true
    ): Tidelog = synchronized(this) {
        instance?.let { return it }
        val packageInfo = application.packageManager.getPackageInfo(application.packageName, 0)
        val config = TidelogConfig(
            host = host,
            apiKey = apiKey,
            // Private to the app, kept across updates, removed with the app.
            storage = File(application.filesDir, "tidelog"),
            appVersion = packageInfo.versionName,
            osName = "Android",
            osVersion = Build.VERSION.RELEASE,
            bootstrapFlags = bootstrapFlags,
            log = { message -> Log.i("Tidelog", message) }
        )
        val tidelog = Tidelog(config)
        // The whole app's foreground and background, not one Activity's: ON_START when its first
        // Activity starts, ON_STOP (~700 ms after the last one stops, so a rotation is no stop).
        // Must be added on the main thread, which Application.onCreate is.
        ProcessLifecycleOwner.get().lifecycle.addObserver(object : DefaultLifecycleObserver {
            override fun onStart(owner: LifecycleOwner) = tidelog.onForeground()
            override fun onStop(owner: LifecycleOwner) = tidelog.onBackground()
        })
        if (trackScreens) application.registerActivityLifecycleCallbacks(ScreenViews(tidelog))
        instance = tidelog
        tidelog
    }

    private class ScreenViews(private val tidelog: Tidelog) : Application.ActivityLifecycleCallbacks {
        override fun onActivityResumed(activity: Activity) {
            tidelog.screen(activity.javaClass.simpleName)
        }

        override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) {}
        override fun onActivityStarted(activity: Activity) {}
        override fun onActivityPaused(activity: Activity) {}
        override fun onActivityStopped(activity: Activity) {}
        override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) {}
        override fun onActivityDestroyed(activity: Activity) {}
    }
}

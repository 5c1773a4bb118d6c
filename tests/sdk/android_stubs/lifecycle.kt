package androidx.lifecycle

interface LifecycleObserver

interface LifecycleOwner {
    val lifecycle: Lifecycle
}

abstract class Lifecycle {
    abstract fun addObserver(observer: LifecycleObserver)
}

// lifecycle-common 2.x: a Kotlin interface whose callbacks all have empty default bodies.
interface DefaultLifecycleObserver : LifecycleObserver {
    fun onCreate(owner: LifecycleOwner) {}
    fun onStart(owner: LifecycleOwner) {}
    fun onResume(owner: LifecycleOwner) {}
    fun onPause(owner: LifecycleOwner) {}
    fun onStop(owner: LifecycleOwner) {}
    fun onDestroy(owner: LifecycleOwner) {}
}

class ProcessLifecycleOwner private constructor() : LifecycleOwner {
    override val lifecycle: Lifecycle = object : Lifecycle() {
        override fun addObserver(observer: LifecycleObserver) {}
    }

    companion object {
        @JvmStatic
        fun get(): LifecycleOwner = ProcessLifecycleOwner()
    }
}

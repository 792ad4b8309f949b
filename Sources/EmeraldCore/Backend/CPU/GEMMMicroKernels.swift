import Foundation
import Synchronization

// MARK: - Micro-kernels

@usableFromInline typealias V8 = SIMD8<Float>
@usableFromInline typealias V16 = SIMD16<Float>

@inline(__always) func ld<V: SIMD>(_ p: UnsafeRawPointer, _ off: Int, _: V.Type) -> V {
    p.loadUnaligned(fromByteOffset: off, as: V.self)
}

@inline(__always) func st<V: SIMD>(_ v: V, _ p: UnsafeMutableRawPointer, _ off: Int) {
    p.storeBytes(of: v, toByteOffset: off, as: V.self)
}

/// Writes acc (+ beta·C) to one row of C: beta == 0 never reads C.
@inline(__always) private func out<V: SIMD>(_ acc: V, _ c: UnsafeMutableRawPointer, _ off: Int, _ beta: Float)
    where V.Scalar == Float {
    if beta == 0 {
        st(acc, c, off)
    } else if beta == 1 {
        st(acc + ld(c, off, V.self), c, off)
    } else {
        st(acc.addingProduct(V(repeating: beta), ld(c, off, V.self)), c, off)
    }
}

protocol GEMMMicroKernel {
    static var mr: Int { get }
    static var nr: Int { get }
    /// C[mr×nr] (row stride ldc) = alpha·A·B (+ bias[0..<nr] on every row) (+ beta·C);
    /// b: kc rows of nr floats, `bStride` bytes apart (nr·4 when packed, ldb·4 when read in
    /// place). A(r, p) is at a[r·rowStride + p·kStride]: (1, mr) for a packed micro-panel
    /// (alpha already folded in, pass 1), (lda, 1) or (1, lda) for A read in place.
    static func run(_ kc: Int, _ a: UnsafePointer<Float>, rowStride: Int, kStride: Int, _ b: UnsafePointer<Float>,
                    bStride: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
                    _ bias: UnsafePointer<Float>?)
}

/// 6×16 tile with SIMD8<Float>: 12 accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm.
enum Kernel6x16: GEMMMicroKernel {
    static var mr: Int { 6 }
    static var nr: Int { 16 }

    @inline(__always)
    static func run(_ kc: Int, _ a: UnsafePointer<Float>, rowStride: Int, kStride: Int, _ b: UnsafePointer<Float>,
                    bStride: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
                    _ bias: UnsafePointer<Float>?) {
        var c00 = V8(), c01 = V8(), c10 = V8(), c11 = V8(), c20 = V8(), c21 = V8()
        var c30 = V8(), c31 = V8(), c40 = V8(), c41 = V8(), c50 = V8(), c51 = V8()
        // Rows 0–2 from pa0 (+0, +s, +2s), rows 3–5 from pa3: two pointers and one stride,
        // so every broadcast is a single addressing mode.
        var pa0 = a, pa3 = a + 3 * rowStride
        let l1 = rowStride, l2 = 2 * rowStride
        var pb = UnsafeRawPointer(b)
        var p = 0
        while p < kc {
            let b0: V8 = ld(pb, 0, V8.self), b1: V8 = ld(pb, 32, V8.self)
            var x = V8(repeating: pa0[0])
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = V8(repeating: pa0[l1])
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = V8(repeating: pa0[l2])
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = V8(repeating: pa3[0])
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = V8(repeating: pa3[l1])
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = V8(repeating: pa3[l2])
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            pa0 += kStride; pa3 += kStride; pb += bStride; p += 1
        }
        if alpha != 1 {
            let s = V8(repeating: alpha)
            c00 *= s; c01 *= s; c10 *= s; c11 *= s; c20 *= s; c21 *= s
            c30 *= s; c31 *= s; c40 *= s; c41 *= s; c50 *= s; c51 *= s
        }
        if let bias {
            let r = UnsafeRawPointer(bias), u: V8 = ld(r, 0, V8.self), w: V8 = ld(r, 32, V8.self)
            c00 += u; c01 += w; c10 += u; c11 += w; c20 += u; c21 += w
            c30 += u; c31 += w; c40 += u; c41 += w; c50 += u; c51 += w
        }
        let r = UnsafeMutableRawPointer(c), s = ldc * 4
        out(c00, r, 0, beta); out(c01, r, 32, beta)
        out(c10, r, s, beta); out(c11, r, s + 32, beta)
        out(c20, r, 2 * s, beta); out(c21, r, 2 * s + 32, beta)
        out(c30, r, 3 * s, beta); out(c31, r, 3 * s + 32, beta)
        out(c40, r, 4 * s, beta); out(c41, r, 4 * s + 32, beta)
        out(c50, r, 5 * s, beta); out(c51, r, 5 * s + 32, beta)
    }
}

/// 8×32 tile with SIMD16<Float>: 16 accumulators + 2 B vectors + broadcasts (of 32 zmm).
enum Kernel8x32: GEMMMicroKernel {
    static var mr: Int { 8 }
    static var nr: Int { 32 }

    @inline(__always)
    static func run(_ kc: Int, _ a: UnsafePointer<Float>, rowStride: Int, kStride: Int, _ b: UnsafePointer<Float>,
                    bStride: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float,
                    _ bias: UnsafePointer<Float>?) {
        var c00 = V16(), c01 = V16(), c10 = V16(), c11 = V16(), c20 = V16(), c21 = V16()
        var c30 = V16(), c31 = V16(), c40 = V16(), c41 = V16(), c50 = V16(), c51 = V16()
        var c60 = V16(), c61 = V16(), c70 = V16(), c71 = V16()
        var pa0 = a, pa4 = a + 4 * rowStride
        let l1 = rowStride, l2 = 2 * rowStride, l3 = 3 * rowStride
        var pb = UnsafeRawPointer(b)
        var p = 0
        while p < kc {
            let b0: V16 = ld(pb, 0, V16.self), b1: V16 = ld(pb, 64, V16.self)
            var x = V16(repeating: pa0[0])
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = V16(repeating: pa0[l1])
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = V16(repeating: pa0[l2])
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = V16(repeating: pa0[l3])
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = V16(repeating: pa4[0])
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = V16(repeating: pa4[l1])
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            x = V16(repeating: pa4[l2])
            c60 = c60.addingProduct(x, b0); c61 = c61.addingProduct(x, b1)
            x = V16(repeating: pa4[l3])
            c70 = c70.addingProduct(x, b0); c71 = c71.addingProduct(x, b1)
            pa0 += kStride; pa4 += kStride; pb += bStride; p += 1
        }
        if alpha != 1 {
            let s = V16(repeating: alpha)
            c00 *= s; c01 *= s; c10 *= s; c11 *= s; c20 *= s; c21 *= s; c30 *= s; c31 *= s
            c40 *= s; c41 *= s; c50 *= s; c51 *= s; c60 *= s; c61 *= s; c70 *= s; c71 *= s
        }
        if let bias {
            let r = UnsafeRawPointer(bias), u: V16 = ld(r, 0, V16.self), w: V16 = ld(r, 64, V16.self)
            c00 += u; c01 += w; c10 += u; c11 += w; c20 += u; c21 += w; c30 += u; c31 += w
            c40 += u; c41 += w; c50 += u; c51 += w; c60 += u; c61 += w; c70 += u; c71 += w
        }
        let r = UnsafeMutableRawPointer(c), s = ldc * 4
        out(c00, r, 0, beta); out(c01, r, 64, beta)
        out(c10, r, s, beta); out(c11, r, s + 64, beta)
        out(c20, r, 2 * s, beta); out(c21, r, 2 * s + 64, beta)
        out(c30, r, 3 * s, beta); out(c31, r, 3 * s + 64, beta)
        out(c40, r, 4 * s, beta); out(c41, r, 4 * s + 64, beta)
        out(c50, r, 5 * s, beta); out(c51, r, 5 * s + 64, beta)
        out(c60, r, 6 * s, beta); out(c61, r, 6 * s + 64, beta)
        out(c70, r, 7 * s, beta); out(c71, r, 7 * s + 64, beta)
    }
}

// MARK: - Per-thread packing buffers

/// Packing buffers owned by one thread; allocated once, grown when needed.
final class GEMMScratch {
    var a: UnsafeMutablePointer<Float>
    var aCap: Int
    var b: UnsafeMutablePointer<Float>
    var bCap: Int
    /// One MR×NR tile for edge blocks.
    let tile: UnsafeMutablePointer<Float>
    /// Which rows of which call `a` holds (call id, first row, end row): lets a thread that
    /// takes several column tasks of one GEMM pack A once.
    var aKey = (-1, 0, 0)
    /// Next task index of a threaded GEMM started by this thread.
    let nextTask = Atomic<Int>(0)

    init() {
        aCap = 0; bCap = 0
        a = GEMMScratch.alloc(16); b = GEMMScratch.alloc(16)
        tile = GEMMScratch.alloc(8 * 32)
    }

    deinit { a.deallocate(); b.deallocate(); tile.deallocate() }

    static func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
        // 64 floats of slack: packing may store up to 2 floats past a panel.
        UnsafeMutableRawPointer.allocate(byteCount: (n + 64) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: n + 64)
    }

    @inline(__always) func ensure(a na: Int, b nb: Int) {
        if na > aCap { a.deallocate(); a = GEMMScratch.alloc(na); aCap = na }
        if nb > bCap { b.deallocate(); b = GEMMScratch.alloc(nb); bCap = nb }
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            if let p { Unmanaged<GEMMScratch>.fromOpaque(p).release() }
        }
        return k
    }()

    /// This thread's buffers.
    static var current: GEMMScratch {
        if let p = pthread_getspecific(key) { return Unmanaged<GEMMScratch>.fromOpaque(p).takeUnretainedValue() }
        let s = GEMMScratch()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }
}

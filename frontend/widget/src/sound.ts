// A short two-note chime made with Web Audio: no sound file to download.
let context: AudioContext | null = null

export function chime(): void {
  try {
    const Ctor = window.AudioContext || (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext
    if (!Ctor) return
    context = context || new Ctor()
    const now = context.currentTime
    for (const [offset, frequency] of [
      [0, 880],
      [0.12, 1320],
    ]) {
      const oscillator = context.createOscillator()
      const gain = context.createGain()
      oscillator.frequency.value = frequency
      gain.gain.setValueAtTime(0.0001, now + offset)
      gain.gain.exponentialRampToValueAtTime(0.15, now + offset + 0.02)
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25)
      oscillator.connect(gain).connect(context.destination)
      oscillator.start(now + offset)
      oscillator.stop(now + offset + 0.3)
    }
  } catch {
    // audio blocked until the visitor interacts: a missed chime is fine
  }
}

/**
 * WindowClimber: decides how W-TinyLFU's admission window should change size (draft; see tinylfu.ts).
 */

/** Tuning knobs (experiments). */
export const climberTuning = {
  samplePerEntry: 10,
  stepPercent: 0.0625,
  decay: 0.98,
  restart: 0.05,
  initialDirection: -1,
  slowAdaptThreshold: 0,
  slowAdaptRatioCap: 4,
  slowAdaptDecay: 0.995,
  minStepEntries: 0,
  /** > 0: a sample also ends after this many misses per entry of capacity. */
  sampleMissesPerEntry: 0,
  /** Step factor when the last move helped (continuing) and when it did not (reversing). */
  growOnSuccess: 0.98,
  shrinkOnReverse: 0.98,
  maxStep: 0.0625,
}

export class WindowClimber {
  /** Hits counted in the current sample. */
  hits = 0
  /** Misses (inserts) counted in the current sample. */
  misses = 0
  private previousHitRate = 0
  /** Signed step, as a share of the capacity: > 0 grows the window. */
  private step: number

  constructor(private maximum: number) {
    this.step = climberTuning.initialDirection * climberTuning.stepPercent
  }

  resize(maximum: number): void {
    this.maximum = maximum
  }

  /** Requests a sample must hold before the climber judges it. */
  samplePeriod(): number {
    const base = climberTuning.samplePerEntry * this.maximum
    if (this.maximum > climberTuning.slowAdaptThreshold) return base
    const initial = climberTuning.stepPercent
    const magnitude = Math.max(Math.abs(this.step), initial / climberTuning.slowAdaptRatioCap)
    return base * Math.max(1, Math.min(climberTuning.slowAdaptRatioCap, initial / magnitude))
  }

  /** Forgets the current sample (the cache is not full yet, or was cleared). */
  resetSample(): void {
    this.hits = 0
    this.misses = 0
  }

  /**
   * Closes the sample if it is complete and returns the adjustment to make, as a signed share of the
   * capacity (0: none).
   */
  climb(): number {
    const requests = this.hits + this.misses
    const missLimit = climberTuning.sampleMissesPerEntry * this.maximum
    if (requests < this.samplePeriod() && (missLimit === 0 || this.misses < missLimit)) return 0
    const hitRate = this.hits / requests
    const change = hitRate - this.previousHitRate
    const amount = change >= 0 ? this.step : -this.step
    const slow = this.maximum <= climberTuning.slowAdaptThreshold
    const decay = slow ? climberTuning.slowAdaptDecay : climberTuning.decay
    const factor = slow ? decay : change >= 0 ? climberTuning.growOnSuccess : climberTuning.shrinkOnReverse
    this.step =
      Math.abs(change) >= climberTuning.restart
        ? Math.sign(amount) * climberTuning.stepPercent
        : Math.sign(amount) * Math.min(climberTuning.maxStep, factor * Math.abs(amount))
    const minStep = climberTuning.minStepEntries / this.maximum
    if (Math.abs(this.step) < minStep) this.step = Math.sign(this.step) * minStep
    this.previousHitRate = hitRate
    this.hits = 0
    this.misses = 0
    return amount
  }
}

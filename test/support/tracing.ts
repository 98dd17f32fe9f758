/** A tracer that records the names of the spans it opens (the spans themselves are Effect's own). */
import { Context, DefaultServices, Tracer } from "effect"

/** Effect's default tracer: what runs when nothing else is installed. */
export const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

export const recordingTracer = () => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      names.push(name)
      return defaultTracer.span(name, parent, context, links, startTime, kind, options)
    },
    context: (f) => f()
  })
  return { tracer, names }
}

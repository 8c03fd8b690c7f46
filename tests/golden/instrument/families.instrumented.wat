(module
  (type (;0;) (func))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32 i32) (result i32)))
  (type (;4;) (func (param i32 i32 i32)))
  (type (;5;) (func (param i32 i64 i32)))
  (type (;6;) (func (param i32 i64 i64 i32)))
  (type (;7;) (func (param i32 i64 i64 i64 i32)))
  (import "heapscope" "alloc" (func $heapscope:alloc (;0;) (type 7)))
  (import "heapscope" "free" (func $heapscope:free (;1;) (type 5)))
  (import "heapscope" "realloc" (func $heapscope:realloc (;2;) (type 7)))
  (import "heapscope" "grow" (func $heapscope:grow (;3;) (type 6)))
  (import "heapscope" "flush" (func $heapscope:flush (;4;) (type 0)))
  (memory (;0;) 1)
  (memory (;1;) 17 17)
  (global $top (;0;) (mut i32) i32.const 1024)
  (global $heapscope:sp (;1;) (mut i32) i32.const 0)
  (global $heapscope:nest (;2;) (mut i32) i32.const 0)
  (global $heapscope:events (;3;) (mut i32) i32.const 1048576)
  (global $heapscope:events_cap (;4;) (mut i32) i32.const 65536)
  (export "memory" (memory 0))
  (export "__wbindgen_malloc" (func 6))
  (export "__wbindgen_free" (func 10))
  (export "_start" (func $main))
  (export "heapscope:global:0" (global $top))
  (export "heapscope:memory:0" (memory 0))
  (export "heapscope:shadow" (memory 1))
  (export "heapscope:sp" (global $heapscope:sp))
  (export "heapscope:events" (global $heapscope:events))
  (export "heapscope:events_cap" (global $heapscope:events_cap))
  (func $heapscope:record (;5;) (type 7) (param i32 i64 i64 i64 i32)
    (local i32 i32)
    block ;; label = @1
      block ;; label = @2
        local.get 4
        i32.const 96
        i32.add
        global.get $heapscope:events_cap
        i32.gt_u
        br_if 0 (;@2;)
        global.get $heapscope:events
        local.get 4
        i32.const 96
        i32.add
        i32.add
        i32.const 1048576
        global.get $heapscope:events_cap
        i32.add
        i32.gt_u
        if ;; label = @3
          call $heapscope:flush
          global.get $heapscope:events
          local.get 4
          i32.const 96
          i32.add
          i32.add
          i32.const 1048576
          global.get $heapscope:events_cap
          i32.add
          i32.gt_u
          br_if 1 (;@2;)
        else
        end
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 0
        i32.store 1
        local.get 5
        local.get 1
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 2
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 3
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 4
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 4
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 4
        i32.add
        global.set $heapscope:events
        br 1 (;@1;)
      end
      local.get 0
      i32.const 24
      i32.shr_u
      i32.const 1
      i32.eq
      if ;; label = @2
        local.get 0
        i32.const 16777215
        i32.and
        local.get 1
        local.get 4
        call $heapscope:free
      else
        local.get 0
        i32.const 24
        i32.shr_u
        i32.const 2
        i32.eq
        if ;; label = @3
          local.get 0
          i32.const 16777215
          i32.and
          local.get 1
          local.get 2
          local.get 3
          local.get 4
          call $heapscope:realloc
        else
          local.get 0
          i32.const 24
          i32.shr_u
          i32.const 0
          i32.eq
          if ;; label = @4
            local.get 0
            i32.const 16777215
            i32.and
            local.get 1
            local.get 2
            local.get 3
            local.get 4
            call $heapscope:alloc
          else
          end
        end
      end
    end
  )
  (func (;6;) (type 3) (param i32 i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 3
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    local.get 1
    call $__wbindgen_malloc.heapscope_original
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 2
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      local.get 1
      i64.extend_i32_u
      local.set 9
      local.set 8
      local.set 7
      i32.const 19
      local.set 4
      global.get $heapscope:events
      local.get 3
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 4
        local.get 7
        local.get 8
        local.get 9
        local.get 3
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 4
        i32.store 1
        local.get 5
        local.get 7
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 8
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 9
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 3
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 3
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 3
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 2
  )
  (func $__new (;7;) (type 3) (param i32 i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 3
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    local.get 1
    call $__new.heapscope_original
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 2
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.set 9
      local.set 8
      local.set 7
      i32.const 15
      local.set 4
      global.get $heapscope:events
      local.get 3
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 4
        local.get 7
        local.get 8
        local.get 9
        local.get 3
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 4
        i32.store 1
        local.get 5
        local.get 7
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 8
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 9
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 3
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 3
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 3
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 2
  )
  (func $_Znwm (;8;) (type 2) (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $"operator new(unsigned long).heapscope_original"
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 1
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.set 8
      local.set 7
      local.set 6
      i32.const 12
      local.set 3
      global.get $heapscope:events
      local.get 2
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 3
        local.get 6
        local.get 7
        local.get 8
        local.get 2
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 4
        local.get 4
        local.get 3
        i32.store 1
        local.get 4
        local.get 6
        i64.store 1 offset=4 align=4
        local.get 4
        local.get 7
        i64.store 1 offset=12 align=4
        local.get 4
        local.get 8
        i64.store 1 offset=20 align=4
        local.get 4
        local.get 2
        i32.store 1 offset=28
        i32.const 0
        local.set 5
        loop ;; label = @3
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 5
          i32.const 64
          i32.add
          local.tee 5
          local.get 2
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 4
        i32.const 32
        i32.add
        local.get 2
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 1
  )
  (func $_Znam (;9;) (type 2) (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 2
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $"operator new[](unsigned long).heapscope_original"
    local.set 1
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 1
      i64.extend_i32_u
      local.get 0
      i64.extend_i32_u
      i64.const 0
      local.set 8
      local.set 7
      local.set 6
      i32.const 12
      local.set 3
      global.get $heapscope:events
      local.get 2
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 3
        local.get 6
        local.get 7
        local.get 8
        local.get 2
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 4
        local.get 4
        local.get 3
        i32.store 1
        local.get 4
        local.get 6
        i64.store 1 offset=4 align=4
        local.get 4
        local.get 7
        i64.store 1 offset=12 align=4
        local.get 4
        local.get 8
        i64.store 1 offset=20 align=4
        local.get 4
        local.get 2
        i32.store 1 offset=28
        i32.const 0
        local.set 5
        loop ;; label = @3
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 4
          local.get 5
          i32.add
          local.get 5
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 5
          i32.const 64
          i32.add
          local.tee 5
          local.get 2
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 4
        i32.const 32
        i32.add
        local.get 2
        i32.add
        global.set $heapscope:events
      end
    else
    end
    local.get 1
  )
  (func (;10;) (type 4) (param i32 i32 i32)
    (local i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 3
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 0
      i64.extend_i32_u
      i64.const 0
      i64.const 0
      local.set 9
      local.set 8
      local.set 7
      i32.const 16777236
      local.set 4
      global.get $heapscope:events
      local.get 3
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 4
        local.get 7
        local.get 8
        local.get 9
        local.get 3
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 5
        local.get 5
        local.get 4
        i32.store 1
        local.get 5
        local.get 7
        i64.store 1 offset=4 align=4
        local.get 5
        local.get 8
        i64.store 1 offset=12 align=4
        local.get 5
        local.get 9
        i64.store 1 offset=20 align=4
        local.get 5
        local.get 3
        i32.store 1 offset=28
        i32.const 0
        local.set 6
        loop ;; label = @3
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 5
          local.get 6
          i32.add
          local.get 6
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 6
          i32.const 64
          i32.add
          local.tee 6
          local.get 3
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 5
        i32.const 32
        i32.add
        local.get 3
        i32.add
        global.set $heapscope:events
      end
    else
    end
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    local.get 1
    local.get 2
    call $__wbindgen_free.heapscope_original
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
  )
  (func $_ZdlPv (;11;) (type 1) (param i32)
    (local i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 0
      i64.extend_i32_u
      i64.const 0
      i64.const 0
      local.set 7
      local.set 6
      local.set 5
      i32.const 16777230
      local.set 2
      global.get $heapscope:events
      local.get 1
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 2
        local.get 5
        local.get 6
        local.get 7
        local.get 1
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 3
        local.get 3
        local.get 2
        i32.store 1
        local.get 3
        local.get 5
        i64.store 1 offset=4 align=4
        local.get 3
        local.get 6
        i64.store 1 offset=12 align=4
        local.get 3
        local.get 7
        i64.store 1 offset=20 align=4
        local.get 3
        local.get 1
        i32.store 1 offset=28
        i32.const 0
        local.set 4
        loop ;; label = @3
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 4
          i32.const 64
          i32.add
          local.tee 4
          local.get 1
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 3
        i32.const 32
        i32.add
        local.get 1
        i32.add
        global.set $heapscope:events
      end
    else
    end
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $"operator delete(void*).heapscope_original"
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
  )
  (func $__free (;12;) (type 1) (param i32)
    (local i32 i32 i32 i32 i64 i64 i64)
    global.get $heapscope:sp
    local.set 1
    global.get $heapscope:nest
    i32.eqz
    if ;; label = @1
      local.get 0
      i64.extend_i32_u
      i64.const 0
      i64.const 0
      local.set 7
      local.set 6
      local.set 5
      i32.const 16777234
      local.set 2
      global.get $heapscope:events
      local.get 1
      i32.const 96
      i32.add
      i32.add
      i32.const 1048576
      global.get $heapscope:events_cap
      i32.add
      i32.gt_u
      if ;; label = @2
        local.get 2
        local.get 5
        local.get 6
        local.get 7
        local.get 1
        call $heapscope:record
      else
        global.get $heapscope:events
        local.set 3
        local.get 3
        local.get 2
        i32.store 1
        local.get 3
        local.get 5
        i64.store 1 offset=4 align=4
        local.get 3
        local.get 6
        i64.store 1 offset=12 align=4
        local.get 3
        local.get 7
        i64.store 1 offset=20 align=4
        local.get 3
        local.get 1
        i32.store 1 offset=28
        i32.const 0
        local.set 4
        loop ;; label = @3
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 align=4
          v128.store 1 offset=32 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=16 align=4
          v128.store 1 offset=48 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=32 align=4
          v128.store 1 offset=64 align=4
          local.get 3
          local.get 4
          i32.add
          local.get 4
          v128.load 1 offset=48 align=4
          v128.store 1 offset=80 align=4
          local.get 4
          i32.const 64
          i32.add
          local.tee 4
          local.get 1
          i32.lt_u
          br_if 0 (;@3;)
        end
        local.get 3
        i32.const 32
        i32.add
        local.get 1
        i32.add
        global.set $heapscope:events
      end
    else
    end
    global.get $heapscope:nest
    i32.const 1
    i32.add
    global.set $heapscope:nest
    local.get 0
    call $__free.heapscope_original
    global.get $heapscope:nest
    i32.const 1
    i32.sub
    global.set $heapscope:nest
  )
  (func $main (;13;) (type 0)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 0
    i32.const 4
    i32.add
    local.set 1
    i32.const 12
    local.get 0
    i32.const 0
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $_Znwm
    local.get 0
    i32.const 1
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $_ZdlPv
    i32.const 13
    local.get 0
    i32.const 2
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $_Znam
    drop
    i32.const 14
    i32.const 3
    local.get 0
    i32.const 3
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $__new
    local.get 0
    i32.const 4
    i32.store 1
    local.get 1
    global.set $heapscope:sp
    call $__free
  )
  (func $heapscope:grow:0 (;14;) (type 2) (param i32) (result i32)
    (local i32)
    local.get 0
    memory.grow
    local.set 1
    i32.const 0
    local.get 0
    i64.extend_i32_u
    local.get 1
    i64.extend_i32_s
    global.get $heapscope:sp
    call $heapscope:grow
    local.get 1
  )
  (func $bump (;15;) (type 2) (param i32) (result i32)
    (local i32)
    global.get $top
    local.set 1
    global.get $top
    local.get 0
    i32.add
    global.set $top
    local.get 1
  )
  (func $"operator new(unsigned long).heapscope_original" (;16;) (type 2) (param i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
    local.get 0
    call $bump
  )
  (func $"operator new[](unsigned long).heapscope_original" (;17;) (type 2) (param i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
    local.get 0
    call $bump
  )
  (func $__new.heapscope_original (;18;) (type 3) (param i32 i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 2
    i32.const 4
    i32.add
    local.set 3
    local.get 0
    call $bump
  )
  (func $__wbindgen_malloc.heapscope_original (;19;) (type 3) (param i32 i32) (result i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 2
    i32.const 4
    i32.add
    local.set 3
    local.get 0
    call $bump
  )
  (func $"operator delete(void*).heapscope_original" (;20;) (type 1) (param i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
  )
  (func $__free.heapscope_original (;21;) (type 1) (param i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 1
    i32.const 4
    i32.add
    local.set 2
  )
  (func $__wbindgen_free.heapscope_original (;22;) (type 4) (param i32 i32 i32)
    (local i32 i32)
    global.get $heapscope:sp
    local.tee 3
    i32.const 4
    i32.add
    local.set 4
  )
  (@producers
    (processed-by "walrus" "0.28.0")
  )
  (@custom "heapscope.sites" (after code) "\01\01\04main\05\08<\01\00\00\00\00\08>\01\00\00\00\00\08B\01\00\00\00\00\08I\01\00\00\00\00\08K\01\00\00\00\00")
  (@custom "heapscope.code_map" (after code) "\01\09\0d\08\a4\12\5c\07\00t\0c\00\0e\04\0e\04\10\08\13\0e\0e\04\0f\00\9a\13\11\02\00\0a\03\00\10\01\ac\13\11\02\00*\0c\00\11\02\be\13\11\02\008\0c\00\12\04\d0\13\11\02\00L\0c\00\13\06\e2\13\11\02\00`\0c\00\14\03\f4\13\0d\02\00F\0c\00\15\05\82\14\0d\02\00Z\0c\00\16\07\90\14\0d\02\00n\0c\00")
)

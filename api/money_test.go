package api_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gpux/gpux/client"
)

// TestAmountTooLarge: a deposit that would take the money inside the
// exchange past engine.MaxMoney (1e14 USD) answers 422 amount_too_large on
// "amount" and changes nothing (the engine's bound, #9.3).
func TestAmountTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "", client.RoleBuyer)
	// 100 deposits of the largest amount (1e12) reach the bound exactly.
	for i := range 100 {
		if _, err := e.admin.Deposit(bg, buyer.id, "1000000000000"); err != nil {
			t.Fatalf("deposit %d: %v", i, err)
		}
	}
	before := snapshot(t, e, buyer, owner)
	status, hdr, body := e.raw(http.MethodPost, "/v1/accounts/"+owner.id+"/deposits", adminKey, []byte(`{"amount":"0.0001"}`))
	wantProblem(t, status, hdr, body, http.StatusUnprocessableEntity, "amount_too_large", "amount")
	if after := snapshot(t, e, buyer, owner); !reflect.DeepEqual(before, after) {
		t.Errorf("state changed:\nbefore %s\nafter  %s", dump(before), dump(after))
	}
	// Money can still leave, and then come back up to the bound.
	if _, err := e.admin.Withdraw(bg, buyer.id, "1"); err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	if _, err := e.admin.Deposit(bg, owner.id, "1"); err != nil {
		t.Errorf("deposit back to the bound: %v", err)
	}
}
